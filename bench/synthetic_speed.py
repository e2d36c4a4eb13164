"""Speed and memory of the synthetic market: one JSON line.

Streams the events in chunks first (memory bounded by one chunk: ``peak_rss_stream_mb``), then
generates them in one array (``peak_rss_mb``, which includes that array), both after a JIT
warm-up on a small run, so the figures are steady-state generation speed on one core.

    .venv/bin/python bench/synthetic_speed.py [--events 10000000] [--chunk 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

from quotewise.data.synthetic import generate_synthetic, iter_synthetic_chunks


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    generate_synthetic(10_000, seed=args.seed)
    warmup_s = time.perf_counter() - t0
    rss_before = _peak_rss_mb()

    t0 = time.perf_counter()
    streamed = sum(len(chunk) for chunk in iter_synthetic_chunks(args.events, args.seed, args.chunk))
    stream_s = time.perf_counter() - t0
    rss_stream = _peak_rss_mb()

    t0 = time.perf_counter()
    data = generate_synthetic(args.events, seed=args.seed)
    one_shot_s = time.perf_counter() - t0
    assert streamed == len(data.events) == args.events

    print(
        json.dumps(
            {
                "bench": "synthetic_speed",
                "events": args.events,
                "seconds": round(one_shot_s, 3),
                "events_per_s": round(args.events / one_shot_s),
                "stream_seconds": round(stream_s, 3),
                "stream_events_per_s": round(args.events / stream_s),
                "chunk": args.chunk,
                "market_seconds": round(data.report["duration_s"], 1),
                "jit_warmup_s": round(warmup_s, 2),
                "peak_rss_before_mb": round(rss_before, 1),
                "peak_rss_stream_mb": round(rss_stream, 1),
                "peak_rss_mb": round(_peak_rss_mb(), 1),
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
