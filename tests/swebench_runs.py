"""The SWE-bench bash-only leaderboard's runs that publish per-instance details (17 of them), for tests."""

from __future__ import annotations

import json
from pathlib import Path

BOARD = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "swebench-bash-only-leaderboard" / "leaderboards.json"


def bash_only_runs() -> list[dict]:
    """The bash-only runs with ``per_instance_details``, in the leaderboard's order."""
    board = json.loads(BOARD.read_text())
    return [r for lb in board["leaderboards"] if lb["name"] == "bash-only" for r in lb["results"]
            if r.get("per_instance_details")]
