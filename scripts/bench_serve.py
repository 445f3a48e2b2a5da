"""Bounded local load on ``hmtl serve``: starts the server on a free loopback port, waits for /health, sends
``--requests`` POST /predict requests (one text each) at each ``--concurrency`` (threads, one keep-alive connection
each) and prints requests/s and p50/p95 latency in ms as JSON.

    python scripts/bench_serve.py --serialization_dir runs/small --requests 200 --concurrency 1 8
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import math
import signal
import subprocess
import sys
import threading
import time

DEFAULT_TEXT = ("Ada Lovelace worked with Charles Babbage in London on the Analytical Engine. "
                "She wrote what is often called the first computer program.")


def start_server(args) -> tuple[subprocess.Popen, int, collections.deque]:
    command = [sys.executable, "-m", "hmtl.serve", "--serialization_dir", args.serialization_dir, "--port", "0"]
    if args.batch_size:
        command += ["--batch_size", str(args.batch_size)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log: collections.deque = collections.deque(maxlen=20)
    deadline = time.monotonic() + args.start_timeout
    port = None
    while port is None:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            sys.exit(f"the server stopped (exit {process.returncode}):\n" + "".join(log))
        log.append(line)
        if "serving " in line and "http://" in line:
            port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        if time.monotonic() > deadline:
            process.kill()
            sys.exit("the server did not start in time:\n" + "".join(log))
    def drain() -> None:  # keep reading its log so that a full pipe never blocks it
        for line in process.stderr:
            log.append(line)

    threading.Thread(target=drain, daemon=True).start()
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, port, log
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit("no answer on /health:\n" + "".join(log))
        time.sleep(0.1)


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # as Ctrl+C
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def load(port: int, body: bytes, requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = collections.Counter()
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            elapsed = time.perf_counter() - start
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                else:
                    errors[str(status)] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {"concurrency": concurrency, "requests": requests, "ok": len(latencies), "errors": dict(errors),
            "seconds": round(wall, 3), "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", default="out")
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the text every request sends")
    parser.add_argument("--warmup", type=int, default=5, help="requests sent first, not counted")
    parser.add_argument("--batch_size", type=int, default=None, help="passed to hmtl serve")
    parser.add_argument("--start_timeout", type=float, default=300, help="seconds to wait for the server")
    args = parser.parse_args()
    if args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--requests and --concurrency must be positive")

    process, port, log = start_server(args)
    try:
        body = json.dumps({"texts": [args.text]}).encode()
        warmup = load(port, body, args.warmup, 1) if args.warmup else None
        if warmup and warmup["errors"]:
            sys.exit(f"warm-up requests failed: {warmup['errors']}\n" + "".join(log))
        results = [load(port, body, args.requests, c) for c in args.concurrency]
    finally:
        stop_server(process)
    print(json.dumps({"serialization_dir": args.serialization_dir, "text_chars": len(args.text),
                      "texts_per_request": 1, "results": results}, indent=2))


if __name__ == "__main__":
    main()
