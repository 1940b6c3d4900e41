"""``naq worker --processes 2`` against one process, on CPU-bound and noop jobs.

    python -m benchmarks.processes                 # 3,000 cpu jobs, 20,000 noop, 3 runs
    python -m benchmarks.processes --quick         # 1,000 and 5,000, one run

On a fresh embedded nats-server; see ``benchmarks/_processes.py`` for what is timed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from naq.server import EmbeddedServer

from ._processes import ratio_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description="naq worker --processes 2 against one process, on CPU-bound and noop jobs."
    )
    parser.add_argument("--quick", action="store_true", help="fewer jobs, one run")
    parser.add_argument("--cpu-jobs", type=int, default=None)
    parser.add_argument("--noop-jobs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    jobs = {
        "cpu": args.cpu_jobs or (1_000 if args.quick else 3_000),
        "noop": args.noop_jobs or (5_000 if args.quick else 20_000),
    }
    repeats = args.repeats or (1 if args.quick else 3)
    with EmbeddedServer() as server:
        rows = ratio_rows(server.url, jobs, repeats)
    print(f"{os.cpu_count()} CPU(s), median of {repeats} run(s), runs interleaved")
    print("| jobs | 1 process, jobs/s | `--processes 2`, jobs/s | ratio (range) |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['description']} ({r['jobs']:,}) | {r['one']:,.0f} | {r['two']:,.0f} "
            f"| {r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
