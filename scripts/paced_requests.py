#!/usr/bin/env python3
"""Paced requests for scripts/loadtest.sh: replays a list of request paths
against a loopback server at a fixed rate over a few keep-alive
connections, for a bounded time, and prints how many were sent and how they
were answered. Standard library only.
"""
import argparse
import collections
import http.client
import threading
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--paths", required=True, help="file of request paths, one a line")
    ap.add_argument("--rate", type=float, required=True, help="requests per second in all")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--connections", type=int, default=4)
    a = ap.parse_args()
    paths = [p.strip() for p in open(a.paths) if p.strip()]
    statuses = collections.Counter()
    lock = threading.Lock()
    end = time.monotonic() + a.seconds
    interval = a.connections / a.rate

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        i, due = k, time.monotonic() + k * interval / a.connections
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if due > now:
                time.sleep(due - now)
            due += interval
            try:
                conn.request("GET", paths[i % len(paths)])
                r = conn.getresponse()
                r.read()
                code = r.status
            except (OSError, http.client.HTTPException):
                code = "error"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
            with lock:
                statuses[code] += 1
            i += a.connections

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(statuses.values())
    detail = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items(), key=str))
    print(f"PACED requests={total} statuses={detail}")


if __name__ == "__main__":
    main()
