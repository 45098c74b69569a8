#!/usr/bin/env python3
"""Service proxy benchmark for skiff (issue 7: service proxy).

Run by scripts/bench-proxy.sh inside a private network namespace. Starts
`skiff server --disable-agent` on 127.0.0.1 and `skiff proxy` for a node
"bench", creates N selector-less Services with one EndpointSlice of E
endpoints each, then:
  * full sync: the proxy's own timing of syncs that render and apply all
    N services (render + one iptables-restore of the whole ruleset);
  * programming latency: K EndpointSlice updates, one at a time, each
    carrying `endpoints.kubernetes.io/last-change-trigger-time` = the time
    the client sent it; the proxy logs (applied - trigger) per slice.
Only the Python standard library is used.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def percentile(values, p):
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, kubeconfig, workdir, port):
        def field(path):
            out = subprocess.run(
                ["kubectl", "--kubeconfig", kubeconfig, "config", "view", "--raw",
                 "-o", "jsonpath={%s}" % path],
                check=True, capture_output=True, text=True).stdout
            return base64.b64decode(out)
        cert = os.path.join(workdir, "client.crt")
        key = os.path.join(workdir, "client.key")
        open(cert, "wb").write(field(".users[0].user.client-certificate-data"))
        open(key, "wb").write(field(".users[0].user.client-key-data"))
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.ctx.load_cert_chain(cert, key)
        self.port = port

    def request(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        headers = {"Content-Type": content_type}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if resp.status >= 300:
            raise RuntimeError("%s %s: %s %s" % (method, path, resp.status, data[:300]))
        return json.loads(data)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def slice_body(i, endpoints, generation):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": "svc-%d-bench" % i, "namespace": "default",
            "labels": {"kubernetes.io/service-name": "svc-%d" % i,
                       "endpointslice.kubernetes.io/managed-by": "bench"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now_rfc3339()},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.%d.%d.%d" % (100 + generation % 100, i // 250, (i % 250) * 1 + 0)
                           if e == 0 else "10.42.%d.%d" % (i % 250, e + 1)],
             "conditions": {"ready": True}, "nodeName": "bench" if e % 2 == 0 else "other"}
            for e in range(endpoints)
        ],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between updates")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="skiff-bench-proxy-")
    port = free_port()
    kubeconfig = os.path.join(work, "kubeconfig")
    server = subprocess.Popen([
        args.binary, "server", "--disable-agent", "--data-dir", os.path.join(work, "data"),
        "--bind-address", "127.0.0.1", "--https-listen-port", str(port),
        "--write-kubeconfig", kubeconfig, "--log-level", "warn",
    ], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    proxy = None
    try:
        deadline = time.time() + 60
        while not os.path.exists(kubeconfig):
            if time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        while True:
            try:
                api = Api(kubeconfig, work, port)
                api.request("GET", "/api/v1/namespaces/default")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

        def create(i):
            api.request("POST", "/api/v1/namespaces/default/services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "svc-%d" % i},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            })
            api.request("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                        slice_body(i, args.endpoints, 0))
        t0 = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(args.services)))
        print("created %d services x %d endpoints in %.1fs" % (args.services, args.endpoints, time.time() - t0),
              file=sys.stderr)

        log_path = os.path.join(work, "proxy.log")
        proxy = subprocess.Popen([
            args.binary, "proxy", "--kubeconfig", kubeconfig, "--node-name", "bench",
            "--log-level", "skiff::proxy=debug",
        ], stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
        synced = re.compile(r"service rules synced service_ports=(\d+) full=(\w+) render_ms=([\d.]+) elapsed_ms=([\d.]+)")
        latency = re.compile(r"network programming latency slice=\S+ latency_ms=([\d.]+)")

        def log():
            return open(log_path).read()
        deadline = time.time() + 120
        while not any(int(m.group(1)) >= args.services for m in synced.finditer(log())):
            if time.time() > deadline or proxy.poll() is not None:
                raise RuntimeError("the proxy did not sync:\n" + log()[-2000:])
            time.sleep(0.2)
        first = [float(m.group(4)) for m in synced.finditer(log()) if int(m.group(1)) >= args.services][0]

        for k in range(args.updates):
            i = (k * 37) % args.services
            api.request("PUT", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/svc-%d-bench" % i,
                        slice_body(i, args.endpoints, k + 1))
            time.sleep(args.interval)
        time.sleep(2)
        text = log()
        latencies = [float(m.group(1)) for m in latency.finditer(text)]
        full = [float(m.group(4)) for m in synced.finditer(text)
                if int(m.group(1)) >= args.services and m.group(2) == "true"]
        partial = [float(m.group(4)) for m in synced.finditer(text)
                   if int(m.group(1)) >= args.services and m.group(2) == "false"]
        render = [float(m.group(3)) for m in synced.finditer(text)
                  if int(m.group(1)) >= args.services and m.group(2) == "false"]
        print("partial sync: render p50 %.0f ms of %.0f ms" % (percentile(render, 50), percentile(partial, 50)),
              file=sys.stderr)
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        print("| services x endpoints | iptables rules | full sync (first) | partial sync p50 / max | "
              "programming latency p50 / p99 / max (n) |")
        print("|---|---|---|---|---|")
        print("| %d x %d | %d | %.0f ms | %.0f / %.0f ms | %.0f / %.0f / %.0f ms (%d) |" % (
            args.services, args.endpoints, rules.count("\n-A "), first,
            percentile(partial, 50), max(partial),
            percentile(latencies, 50), percentile(latencies, 99), max(latencies), len(latencies)))
    finally:
        for p in (proxy, server):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
