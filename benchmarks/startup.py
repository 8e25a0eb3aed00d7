"""Start-up cost: ``import interpgen`` and ``interpgen plugins`` (wall time, median of N runs).

    python benchmarks/startup.py --runs 5

Each measurement is a fresh Python process, so it includes the interpreter's own start
(reported separately as ``python -c pass``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import interpgen": [sys.executable, "-c", "import interpgen"],
    "import interpgen + load plugins": [sys.executable, "-c", "import interpgen; interpgen.registry()"],
    "interpgen plugins": [sys.executable, "-m", "interpgen.cli", "plugins"],
    "interpgen plugins --json": [sys.executable, "-m", "interpgen.cli", "plugins", "--json"],
}


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for name, cmd in CASES.items():
        wall(cmd)  # warm the file cache
        results[name] = statistics.median(wall(cmd) for _ in range(args.runs))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, seconds in results.items():
            print(f"{name:34s} {seconds * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
