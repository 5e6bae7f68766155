"""Benchmark: load a ``~/.claude/projects``-like folder of Claude Code sessions.

Run: ``.venv/bin/python benchmarks/bench_claude_code.py [--copies 20]``. Builds, in a
temporary folder, ``copies`` copies of the 24 real session and subagent files of
``../shared/data/real/claude-code-sessions`` (each copy with its own session ids, so no
file is "already loaded"), laid out as ``projects/<project>/...``, then times
``aiscale.load`` on the whole folder and ``store.facts()`` (one run each, wall and CPU
seconds) and prints MB/s and LLM calls per second.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import aiscale

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "claude-code-sessions"
_SESSION = re.compile(rb'"sessionId":\s*"([^"]+)"')


def build(out: Path, copies: int) -> int:
    """Write the copies under ``out``; return the bytes written."""
    written = 0
    files = sorted(REAL.rglob("*.jsonl"))
    for copy in range(copies):
        for path in files:
            data = path.read_bytes()
            ids = set(_SESSION.findall(data))
            for old in ids:
                data = data.replace(old, old + f"-c{copy}".encode())
            target = out / f"-bench-project-{copy % 7}" / f"c{copy}" / path.relative_to(REAL)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += len(data)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        projects = Path(tmp) / "projects"
        size = build(projects, args.copies)
        wall, cpu = time.perf_counter(), time.process_time()
        store = aiscale.load([projects], store=Path(tmp) / "store")
        load_s, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall = time.perf_counter()
        facts = store.facts()
        facts_s = time.perf_counter() - wall
        calls = int(facts.n_llm_calls.sum())
        print(json.dumps({"copies": args.copies, "files": len(store.last_load.files), "mb": round(size / 1e6, 1),
                          "sessions": len(facts), "llm_calls": calls, "load_s": round(load_s, 2),
                          "load_cpu_s_main_process": round(load_cpu, 2), "mb_per_s": round(size / 1e6 / load_s, 1),
                          "calls_per_s": round(calls / load_s), "facts_s": round(facts_s, 2)}))


if __name__ == "__main__":
    main()
