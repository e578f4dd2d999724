#!/usr/bin/env python3
"""What a Python user runs to list a process's descendants: psutil's
Process(pid).children(recursive=True), timed.

Usage: psutil_children.py PID REPEATS
Prints one JSON line: {"median_us": ..., "min_us": ..., "children": N, "processes": M}
where M is the number of processes on the machine at the time. Started by
`cargo bench --bench speed` (benches/speed.rs); it starts no process itself.
"""
import json
import statistics
import sys
import time

import psutil


def main() -> int:
    pid = int(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    root = psutil.Process(pid)
    times = []
    found = 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(root.children(recursive=True))
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "median_us": statistics.median(times) * 1e6,
                "min_us": min(times) * 1e6,
                "children": found,
                "processes": len(psutil.pids()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
