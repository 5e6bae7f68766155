"""Start-up time: `import aiscale` and `aiscale --help`, each in a fresh process.

    .venv/bin/python benchmarks/bench_import.py [--runs 10]

Prints the minimum and median wall time of each over the runs (the target for `import aiscale`
is under 0.4 s) and the slowest imports of one `python -X importtime -c "import aiscale"`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'pass' (the interpreter alone)": [sys.executable, "-c", "pass"],
    "import aiscale": [sys.executable, "-c", "import aiscale"],
    "aiscale --help": [sys.executable, "-m", "aiscale.cli", "--help"],
    "import aiscale; aiscale.TraceStore": [sys.executable, "-c", "import aiscale; aiscale.TraceStore"],
}


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"{'command':<42} {'min s':>7} {'median s':>9}")
    for label, command in COMMANDS.items():
        times = [wall(command) for _ in range(args.runs)]
        print(f"{label:<42} {min(times):>7.3f} {statistics.median(times):>9.3f}")
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import aiscale"],
                           capture_output=True, text=True, check=True).stderr.splitlines()
    rows = sorted((int(line.split("|")[1]), line.split("|")[2].rstrip()) for line in trace[1:])
    print("slowest imports of `import aiscale` (cumulative µs):")
    for micros, name in rows[-5:][::-1]:
        print(f"  {micros:>9} {name}")


if __name__ == "__main__":
    main()
