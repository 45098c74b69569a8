#!/usr/bin/env python3
"""API server benchmark for skiff (issue: API server core).

Measures, against a real `skiff server --disable-agent` on 127.0.0.1:
  * start to /readyz ok on a warm data dir (the server is started once to
    warm the data dir, stopped, then timed over several restarts);
  * idle RSS of the server process after it has settled;
  * create / get / list latency p50 / p99 while a steady stream of
    ConfigMap creates runs at a fixed rate (default 100/s).

Only the Python standard library is used. All traffic goes to 127.0.0.1.
Usage: scripts/bench-api.sh (builds the release binary and runs this).
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


class Server:
    def __init__(self, binary, data_dir, port):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.kubeconfig = os.path.join(data_dir, "kubeconfig.yaml")
        self.proc = None

    def start(self):
        args = [
            self.binary, "server", "--disable-agent",
            "--data-dir", self.data_dir,
            "--bind-address", "127.0.0.1",
            "--https-listen-port", str(self.port),
            "--write-kubeconfig", self.kubeconfig,
            "--log-level", "warn",
        ]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = t0 + 30
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("skiff server exited with %s" % self.proc.returncode)
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=1)
                conn.request("GET", "/readyz")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200 and body.strip() == b"ok":
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("skiff server not ready within 30 s")

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def client_context(kubeconfig, workdir):
    """An SSL context with the admin client certificate from the kubeconfig."""
    def field(path):
        out = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "config", "view", "--raw",
             "-o", "jsonpath={%s}" % path],
            check=True, capture_output=True, text=True).stdout
        return base64.b64decode(out)

    files = {}
    for name, path in [("ca", ".clusters[0].cluster.certificate-authority-data"),
                       ("cert", ".users[0].user.client-certificate-data"),
                       ("key", ".users[0].user.client-key-data")]:
        files[name] = os.path.join(workdir, name + ".pem")
        with open(files[name], "wb") as f:
            f.write(field(path))
    ctx = ssl.create_default_context(cafile=files["ca"])
    ctx.check_hostname = False  # the cert is for 127.0.0.1; IP SAN checks vary by Python build
    ctx.load_cert_chain(files["cert"], files["key"])
    return ctx


class Client(threading.local):
    def __init__(self, port, ctx):
        self.port = port
        self.ctx = ctx
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
            try:
                headers = {"Content-Type": "application/json", "Accept": "application/json"}
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, time.perf_counter() - t0, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def load(port, ctx, rate, seconds, get_rate, list_interval):
    client = Client(port, ctx)
    lat = {"create": [], "get": [], "list": []}
    errors = {"create": 0, "get": 0, "list": 0}
    created = []
    lock = threading.Lock()
    ns = "default"

    def create(i):
        body = json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bench-%06d" % i, "labels": {"bench": "api"}},
            "data": {"payload": "x" * 1024},
        })
        status, dt, _ = client.call("POST", "/api/v1/namespaces/%s/configmaps" % ns, body)
        with lock:
            if status == 201:
                lat["create"].append(dt)
                created.append(i)
            else:
                errors["create"] += 1

    def get():
        with lock:
            if not created:
                return
            i = created[len(created) // 2]
        status, dt, _ = client.call("GET", "/api/v1/namespaces/%s/configmaps/bench-%06d" % (ns, i))
        with lock:
            if status == 200:
                lat["get"].append(dt)
            else:
                errors["get"] += 1

    def list_():
        status, dt, _ = client.call("GET", "/api/v1/namespaces/%s/configmaps?limit=500" % ns)
        with lock:
            if status == 200:
                lat["list"].append(dt)
            else:
                errors["list"] += 1

    total = int(rate * seconds)
    start = time.perf_counter()
    next_list = start + list_interval
    get_every = max(1, int(round(rate / get_rate))) if get_rate > 0 else 0
    late = 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = []
        for i in range(total):
            due = start + i / rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            elif now - due > 0.05:
                late += 1
            futures.append(pool.submit(create, i))
            if get_every and i % get_every == 0:
                futures.append(pool.submit(get))
            if time.perf_counter() >= next_list:
                futures.append(pool.submit(list_))
                next_list += list_interval
        for f in futures:
            f.result()
    elapsed = time.perf_counter() - start
    return lat, errors, total / elapsed, late


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rate", type=float, default=100.0, help="creates per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--get-rate", type=float, default=50.0, help="gets per second during the load")
    ap.add_argument("--list-interval", type=float, default=1.0, help="seconds between lists")
    ap.add_argument("--restarts", type=int, default=5)
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="skiff-bench-api-")
    server = Server(args.binary, os.path.join(workdir, "data"), free_port())
    try:
        cold = server.start()
        server.stop()
        warm = []
        for _ in range(args.restarts):
            warm.append(server.start())
            server.stop()
        server.start()
        time.sleep(10)
        idle_rss = server.rss_kib()
        ctx = client_context(server.kubeconfig, workdir)
        lat, errors, achieved, late = load(server.port, ctx, args.rate, args.seconds,
                                           args.get_rate, args.list_interval)
        loaded_rss = server.rss_kib()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    ms = lambda v: "%.2f" % (v * 1000)
    print("| measure | value |")
    print("|---|---|")
    print("| start to /readyz, first start (fresh data dir) | %s ms |" % ms(cold))
    print("| start to /readyz, warm data dir, median of %d | %s ms |" % (len(warm), ms(statistics.median(warm))))
    print("| start to /readyz, warm data dir, max of %d | %s ms |" % (len(warm), ms(max(warm))))
    print("| idle RSS after 10 s | %.1f MiB |" % (idle_rss / 1024.0))
    print("| RSS after the load | %.1f MiB |" % (loaded_rss / 1024.0))
    print("| achieved create rate | %.1f /s (target %.0f, %d sends late by > 50 ms) |" % (achieved, args.rate, late))
    for op in ("create", "get", "list"):
        v = lat[op]
        print("| %s latency p50 / p99 (n=%d, errors=%d) | %s / %s ms |" % (
            op, len(v), errors[op], ms(percentile(v, 50)), ms(percentile(v, 99))))
    return 0 if not any(errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
