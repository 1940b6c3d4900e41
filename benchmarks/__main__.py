"""``python -m benchmarks [--quick] [--json PATH] [--size N]``, on an embedded nats-server."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from typing import Any

from naq.server import EmbeddedServer, find_nats_server

from ._floors import PAYLOAD_SIZE
from ._report import format_table, write_json
from ._suite import REPEATS, run_suite

QUICK_SIZE = 2_000
DEFAULT_SIZE = 20_000


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="naq's throughput and latency next to raw nats-py floors, on one server.",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SIZE:,} messages/jobs per figure"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--size",
        type=int,
        metavar="N",
        help=f"messages/jobs per throughput figure (default {DEFAULT_SIZE:,})",
    )
    args = parser.parse_args(argv)
    if args.size is not None and args.size < 100:
        parser.error("--size must be at least 100")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start a server, run the suite, print the table (and write JSON when asked)."""
    args = _parse(argv)
    size = args.size or (QUICK_SIZE if args.quick else DEFAULT_SIZE)
    latency_samples = max(100, size // 10)
    started = time.perf_counter()
    print(
        f"naq benchmarks: {size:,} per figure, {latency_samples:,} latency samples", file=sys.stderr
    )
    with EmbeddedServer() as server:
        print(f"  embedded nats-server at {server.url}", file=sys.stderr)
        rows = run_suite(server.url, size, latency_samples)
    elapsed = time.perf_counter() - started
    print(f"  done in {elapsed:.1f} s\n", file=sys.stderr)
    print(format_table(rows))
    if args.json:
        write_json(args.json, rows, _context(size, latency_samples, elapsed))
    return 0


def _context(size: int, latency_samples: int, elapsed: float) -> dict[str, Any]:
    """What a JSON reader needs to compare runs: settings, versions and the machine."""
    server = subprocess.run(
        [find_nats_server(), "--version"], capture_output=True, text=True, check=True
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "size": size,
        "repeats": REPEATS,
        "latency_samples": latency_samples,
        "payload_bytes": PAYLOAD_SIZE,
        "seconds": round(elapsed, 1),
        "versions": {
            "naq": version("naq"),
            "nats-py": version("nats-py"),
            "anyio": version("anyio"),
            "trio": version("trio"),
            "nats-server": server.stdout.strip().removeprefix("nats-server: "),
            "python": platform.python_version(),
        },
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
