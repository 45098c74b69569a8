#!/usr/bin/env python3
"""Scheduler density benchmark for skiff (issue 5).

Against a real `skiff server --disable-agent` on 127.0.0.1 with
`skiff sim-nodes --count N` simulated nodes, creates Deployments totalling
N x pods-per-node pods at a steady rate and measures:
  * the time from the first Deployment create until every pod is Running;
  * scheduler throughput: pods bound per second, from the first binding to
    the last, and the best one-second window;
  * pod create -> bound latency p50 / p99 (as seen on a pod watch);
  * API mutating-call (POST/PUT/PATCH/DELETE) p99 from the server's
    `apiserver_request_duration_seconds` histogram over the run;
  * the server's resident memory, peak and at the end.

Only the Python standard library is used. All traffic goes to 127.0.0.1.
Usage: scripts/bench-density.sh (builds the release binary and runs this).
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from bench_api import Client, Server, client_context, free_port, percentile

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def scrape(client, metric="apiserver_request_duration_seconds"):
    """Mutating calls' cumulative latency buckets of `metric`, summed."""
    status, _, data = client.call("GET", "/metrics")
    if status != 200:
        raise RuntimeError("/metrics answered %s" % status)
    buckets = Counter()
    for line in data.decode().splitlines():
        if not line.startswith(metric + "_bucket{"):
            continue
        labels, value = line.rsplit(" ", 1)
        verb = labels.split('verb="', 1)[1].split('"', 1)[0]
        if verb not in MUTATING:
            continue
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        buckets[float("inf") if le == "+Inf" else float(le)] += int(value)
    return buckets


def histogram_quantile(q, before, after):
    """Prometheus' histogram_quantile over the cumulative bucket deltas."""
    bounds = sorted(after)
    cumulative = [(le, after[le] - before.get(le, 0)) for le in bounds]
    if not cumulative or cumulative[-1][1] == 0:
        return float("nan"), 0
    total = cumulative[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0
    for le, count in cumulative:
        if count >= rank:
            if le == float("inf"):
                return prev_le, total
            return prev_le + (le - prev_le) * (rank - prev_count) / max(1, count - prev_count), total
        prev_le, prev_count = le, count
    return prev_le, total


class PodWatch(threading.Thread):
    """Records when each pod is first seen, first seen bound, first Running."""

    def __init__(self, port, ctx):
        super().__init__(daemon=True)
        self.client = Client(port, ctx)
        self.created, self.bound, self.running = {}, {}, {}
        self.lock = threading.Lock()
        self.ready = threading.Event()

    def run(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.client.port, context=self.client.ctx)
        conn.request("GET", "/api/v1/pods?watch=true", headers={"Accept": "application/json"})
        resp = conn.getresponse()
        self.ready.set()
        while True:
            line = resp.readline()
            if not line:
                return
            now = time.perf_counter()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            pod = event.get("object", {})
            meta = pod.get("metadata", {})
            key = "%s/%s" % (meta.get("namespace"), meta.get("name"))
            with self.lock:
                self.created.setdefault(key, now)
                if pod.get("spec", {}).get("nodeName"):
                    self.bound.setdefault(key, now)
                if pod.get("status", {}).get("phase") == "Running":
                    self.running.setdefault(key, now)


def deployment(name, replicas, held=False):
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if held:
        spec["nodeSelector"] = {"bench-density": "go"}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": spec,
            },
        },
    })


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--pods-per-node", type=int, default=30)
    p.add_argument("--deployments", type=int, default=30)
    p.add_argument("--interval", type=float, default=0.2,
                   help="seconds between Deployment creates (default 0.2)")
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--held", action="store_true",
                   help="create every pod first with a nodeSelector no node matches, then label "
                        "the nodes: measures the scheduler alone on a full queue")
    args = p.parse_args()

    total = args.nodes * args.pods_per_node
    per_deployment = total // args.deployments
    total = per_deployment * args.deployments
    workdir = tempfile.mkdtemp(prefix="skiff-density-")
    server = Server(args.binary, os.path.join(workdir, "data"), free_port())
    sim = None
    try:
        server.start()
        ctx = client_context(server.kubeconfig, workdir)
        client = Client(server.port, ctx)
        sim_log = open(os.path.join(workdir, "sim-nodes.log"), "wb")
        sim = subprocess.Popen(
            [args.binary, "sim-nodes", "--kubeconfig", server.kubeconfig, "--count", str(args.nodes)],
            stdout=sim_log, stderr=sim_log, env=dict(os.environ, RUST_LOG="warn"))
        deadline = time.perf_counter() + 60
        while True:
            status, _, data = client.call("GET", "/api/v1/nodes")
            items = json.loads(data).get("items", []) if status == 200 else []
            ready = [n for n in items if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in n.get("status", {}).get("conditions", []))]
            if len(ready) >= args.nodes:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("only %d of %d nodes became Ready" % (len(ready), args.nodes))
            time.sleep(0.5)
        time.sleep(2)  # let node registration settle

        watch = PodWatch(server.port, ctx)
        watch.start()
        watch.ready.wait(10)
        metric = "apiserver_request_duration_seconds"
        before = scrape(client, metric)
        if not before:
            # Older servers only had the coarser SLI histogram.
            metric = "apiserver_request_sli_duration_seconds"
            before = scrape(client, metric)
        peak_rss = [rss_kib(server.proc.pid)]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak_rss[0] = max(peak_rss[0], rss_kib(server.proc.pid))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()

        start = time.perf_counter()
        for i in range(args.deployments):
            due = start + i * args.interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status, _, data = client.call(
                "POST", "/apis/apps/v1/namespaces/default/deployments",
                deployment("density-%02d" % i, per_deployment, args.held))
            if status != 201:
                raise RuntimeError("creating a Deployment: %s %s" % (status, data[:200]))
        if args.held:
            while True:
                with watch.lock:
                    seen = len(watch.created)
                if seen >= total:
                    break
                if time.perf_counter() - start > args.timeout:
                    raise RuntimeError("only %d of %d pods were created" % (seen, total))
                time.sleep(0.1)
            released = time.perf_counter()
            label = json.dumps({"metadata": {"labels": {"bench-density": "go"}}})
            for i in range(args.nodes):
                conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
                conn.request("PATCH", "/api/v1/nodes/sim-%d" % i, body=label,
                             headers={"Content-Type": "application/merge-patch+json"})
                conn.getresponse().read()
                conn.close()
            print("pods created in %.1f s; nodes labelled in %.1f s" % (
                released - start, time.perf_counter() - released), file=sys.stderr)
        while True:
            with watch.lock:
                done = len(watch.running)
            if done >= total:
                break
            if time.perf_counter() - start > args.timeout:
                break
            time.sleep(0.1)
        end = time.perf_counter()
        stop.set()
        time.sleep(0.3)
        after = scrape(client, metric)
        final_rss = rss_kib(server.proc.pid)

        with watch.lock:
            bound = dict(watch.bound)
            created = dict(watch.created)
            running = dict(watch.running)
        bind_times = sorted(bound.values())
        first, last = bind_times[0], bind_times[-1]
        per_second = Counter(int(t - first) for t in bind_times)
        latencies = [bound[k] - created[k] for k in bound if k in created]
        p99, calls = histogram_quantile(0.99, before, after)
        p50, _ = histogram_quantile(0.50, before, after)
        all_running = end - start if len(running) >= total else float("nan")

        print("| metric | value | target |")
        print("|---|---:|---:|")
        print("| nodes / pods | %d / %d | |" % (args.nodes, total))
        print("| Deployments x replicas, created every | %d x %d, %.2f s | |" % (
            args.deployments, per_deployment, args.interval))
        print("| pods Running | %d / %d | all |" % (len(running), total))
        print("| first Deployment create to all Running | %.1f s | < 60 s |" % all_running)
        print("| scheduler throughput, first to last binding | %.0f pods/s | >= 300 |" % (
            len(bind_times) / max(1e-9, last - first)))
        print("| scheduler throughput, best 1 s window | %d pods/s | |" % max(per_second.values()))
        print("| pod created -> bound, p50 / p99 | %.0f / %.0f ms | |" % (
            percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000))
        print("| API mutating calls during the run | %d | |" % calls)
        print("| API mutating call p50 / p99 (`%s`) | %.1f / %.1f ms | p99 < 100 ms |" % (
            metric, p50 * 1000, p99 * 1000))
        print("| server RSS, peak / at the end | %.0f / %.0f MiB | < 300 MiB |" % (
            peak_rss[0] / 1024, final_rss / 1024))
        return 0
    finally:
        if sim is not None and sim.poll() is None:
            sim.terminate()
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
