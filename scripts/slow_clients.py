#!/usr/bin/env python3
"""Slow clients for scripts/loadtest.sh: N connections that send a request's
headers one byte a second (slowloris) and reconnect when the server closes
them, for a bounded time, against a loopback server only.

Prints how many connections the server closed and how long it let them live.
Standard library only.
"""
import argparse
import selectors
import socket
import statistics
import time

HEADER = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 4096


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    opened = {}  # socket -> (opened_at, bytes sent)
    lifetimes = []
    closed_by_server = 0
    end = time.monotonic() + a.seconds

    def connect():
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened[s] = [time.monotonic(), 0]

    for _ in range(a.connections):
        connect()
    next_tick = time.monotonic()
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed_by_server += 1
                lifetimes.append(time.monotonic() - opened.pop(s)[0])
                sel.unregister(s)
                s.close()
                connect()
        if time.monotonic() >= next_tick:
            next_tick += 1.0
            for s, st in list(opened.items()):
                if st[1] < len(HEADER):
                    try:
                        s.send(HEADER[st[1]:st[1] + 1])
                        st[1] += 1
                    except OSError:
                        pass
    for s in list(opened):
        s.close()
    med = statistics.median(lifetimes) if lifetimes else float("nan")
    print(f"SLOW connections={a.connections} closed_by_server={closed_by_server} "
          f"median_lifetime_s={med:.1f}")


if __name__ == "__main__":
    main()
