"""Benchmark: the reward server's overhead per request versus the in-process call, and its throughput.

A cheap weight-free scorer (``temporal_flickering`` by default) on small clips (17 frames of
96x64 by default, frames sent as uint8 arrays), so the figures are the service's own cost:
payload encoding, HTTP, parsing, queueing and the session's bookkeeping.

1. In-process: ``RewardService.score([item])`` one call at a time — p50/p99 latency.
2. Server on 127.0.0.1 (uvicorn in a thread of this process, like ``anibench reward serve``):
   one client, one item per request, binary container and base64 JSON — p50/p99 latency
   and the overhead over (1).
3. Throughput: 8 client threads (one connection pool each) sending requests as fast as they
   are answered; requests/s and clips/s, with the batcher's batch count (requests waiting
   together are scored in one session call).

    .venv/bin/python benchmarks/bench_reward_service.py [--requests 200] [--frames 17] [--size 96x64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from anibench.reward.client import RewardClient
from anibench.reward.payload import Limits
from anibench.reward.server import RunningServer, ServerConfig, create_app
from anibench.reward.service import RewardService

TOKEN = "bench-token"


def clip(frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.stack([np.roll(base, t, axis=1) for t in range(frames)])


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p99 * 1000


def latency(call, n: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", default="96x64", help="WIDTHxHEIGHT")
    parser.add_argument("--scorer", default="temporal_flickering")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = clip(args.frames, width, height)
    item = {"video": frames, "fps": 16.0}

    service = RewardService([args.scorer], device="cpu")
    rows = []
    in_process = latency(lambda: service.score([item]), args.requests)
    rows.append(("in-process RewardService.score", *percentiles(in_process)))

    app = create_app(service, ServerConfig(token=TOKEN, limits=Limits(max_batch=64), max_pending=256))
    with RunningServer(app) as server:
        with RewardClient(server.url, TOKEN, retries=0) as client:
            binary = latency(lambda: client.score([item]), args.requests)
        with RewardClient(server.url, TOKEN, retries=0, binary=False) as client:
            as_json = latency(lambda: client.score([item]), args.requests)
        rows.append(("HTTP, binary frames", *percentiles(binary)))
        rows.append(("HTTP, base64 JSON", *percentiles(as_json)))

        per_client = max(1, args.requests // 4)

        def worker(_: int) -> int:
            with RewardClient(server.url, TOKEN, retries=2) as c:
                for _ in range(per_client):
                    c.score([item])
            return per_client

        batches_before = app.state.batcher.batches
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            done = sum(pool.map(worker, range(args.clients)))
        seconds = time.perf_counter() - start
        batches = app.state.batcher.batches - batches_before

        start = time.perf_counter()
        for _ in range(done):
            service.score([item])
        sequential = time.perf_counter() - start
    service.close()

    base50, base99 = rows[0][1], rows[0][2]
    print(f"clip: {args.frames} frames of {width}x{height} uint8 ({frames.nbytes / 1024:.0f} KiB), scorer "
          f"{args.scorer}, {args.requests} requests each; Python {sys.version.split()[0]}")
    print()
    print("| path | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, p50, p99 in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - base50:+.2f} | {p99 - base99:+.2f} |")
    print()
    print(f"{args.clients} concurrent clients: {done} requests in {seconds:.2f} s = {done / seconds:.1f} req/s "
          f"(clips/s the same, one clip per request), scored in {batches} batches "
          f"(mean {done / max(1, batches):.1f} requests per batch); in-process sequential: "
          f"{done / sequential:.1f} clips/s")


if __name__ == "__main__":
    main()
