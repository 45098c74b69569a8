#!/usr/bin/env python3
"""DNS query benchmark client (issue 7): sends A queries for one name to one
server at a bounded rate over UDP, one at a time (each waits for its answer
or a 1 s timeout), and prints latency p50/p99/max, the answered rate and the
failures as one JSON line. Standard library only; meant to run inside a
pod's network namespace (`nsenter --net=...`) against the cluster DNS.

Usage: bench_dns_client.py SERVER NAME [--rate QPS] [--seconds S]
"""

import argparse
import json
import random
import socket
import struct
import time


def query(name, qid):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("name")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.server, 53))
    sock.settimeout(1.0)
    latencies, failures = [], 0
    interval = 1.0 / args.rate
    start = time.perf_counter()
    deadline = start + args.seconds
    next_at = start
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        qid = random.randrange(65536)
        sent = time.perf_counter()
        sock.send(query(args.name, qid))
        try:
            while True:
                reply = sock.recv(4096)
                if len(reply) >= 12 and struct.unpack(">H", reply[:2])[0] == qid:
                    break
        except socket.timeout:
            failures += 1
            continue
        rcode = reply[3] & 0x0F
        ancount = struct.unpack(">H", reply[6:8])[0]
        if rcode != 0 or ancount == 0:
            failures += 1
            continue
        latencies.append((time.perf_counter() - sent) * 1000)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "queries": len(latencies) + failures,
        "answered": len(latencies),
        "failures": failures,
        "rate_target": args.rate,
        "answered_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(max(latencies) if latencies else 0, 3),
    }))


if __name__ == "__main__":
    main()
