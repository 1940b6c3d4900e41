"""naq's benchmarks: naq's paths measured against raw nats-py floors in the same run.

Run ``python -m benchmarks --quick`` (about half a minute) or ``python -m benchmarks``;
see ``benchmarks/README.md`` for what each figure means.
"""
