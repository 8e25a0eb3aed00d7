"""Start-up cost: ``import interpgen``, ``interpgen --help``, ``plugins`` and ``recipe`` (wall time,
median of N runs).

    python benchmarks/startup.py --runs 5
    python benchmarks/startup.py --runs 7 --against /path/to/other/venv/bin/python   # before/after

Each measurement is a fresh Python process. With ``--against`` the other interpreter (e.g. a
virtual environment holding an older interpgen) is measured in the same run, alternating with
this one, and the ratio this/other is reported: on a shared machine only such ratios compare.
Every process runs in an empty folder, so each interpreter imports its own installed interpgen
(``-m`` and ``-c`` would put a checkout in the working folder first on ``sys.path``).

Each measurement is a fresh Python process, so it includes the interpreter's own start
(reported separately as ``python -c pass``) and, where torch is imported, torch's own import
(``import torch``). ``interpgen --help`` lists the plugins' commands from a cache
(interpgen/cli/cache.py), warm after the first run; the cold case gives every run an empty one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import subprocess
import sys
import tempfile
import time

COLD = "interpgen --help, cold cache"


def cases(python: str) -> dict[str, list[str]]:
    return {
        "python -c pass": [python, "-c", "pass"],
        "import torch": [python, "-c", "import torch"],
        "import interpgen": [python, "-c", "import interpgen"],
        "import interpgen + load plugins": [python, "-c", "import interpgen; interpgen.registry()"],
        "interpgen --help": [python, "-m", "interpgen.cli", "--help"],
        COLD: [python, "-m", "interpgen.cli", "--help"],
        "interpgen plugins": [python, "-m", "interpgen.cli", "plugins"],
        "interpgen plugins --json": [python, "-m", "interpgen.cli", "plugins", "--json"],
        "interpgen recipe": [python, "-m", "interpgen.cli", "recipe"],
    }


def wall(cmd: list[str], *, cold: bool = False) -> float:
    env = {k: v for k, v in os.environ.items() if k != "INTERPGEN_CACHE"}
    with tempfile.TemporaryDirectory() as empty:
        if cold:
            env["XDG_CACHE_HOME"] = empty
        started = time.perf_counter()  # run outside the checkout: `-m`/`-c` put the folder first on sys.path
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=empty)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--against", help="another Python (with another interpgen) to measure alongside")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    mine, other = cases(sys.executable), cases(args.against) if args.against else None
    for name, cmd in mine.items():
        cold = name == COLD
        wall(cmd)  # warm the file cache (and interpgen's command cache)
        if other is not None:
            wall(other[name])
        times: dict[str, list[float]] = {"this": [], "other": []}
        for _ in range(args.runs):
            times["this"].append(wall(cmd, cold=cold))
            if other is not None:
                times["other"].append(wall(other[name], cold=cold))
        results[name] = {key: statistics.median(v) for key, v in times.items() if v}
        if other is not None:
            results[name]["ratio"] = results[name]["this"] / results[name]["other"]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, row in results.items():
        line = f"{name:34s} {row['this'] * 1000:7.0f} ms"
        if "other" in row:
            line += f"   other {row['other'] * 1000:7.0f} ms   ratio {row['ratio']:.2f}"
        print(line)


if __name__ == "__main__":
    main()
