"""aiscale: what LLM and agent systems cost, how their loops behave, how reliable they are.

Read the traces a system already exports, roll them up to one row per trace, and answer
cost, loop, reliability and scaling questions with error bars.

Examples
--------
>>> import aiscale, tempfile
>>> store = aiscale.load([], store=tempfile.mkdtemp())
>>> store.facts().empty
True
"""

from __future__ import annotations

from aiscale.facts_table import load_facts
from aiscale.loaders import formats
from aiscale.rollup import rollup_frames
from aiscale.store import TraceStore, load

__version__ = "0.1.0"

__all__ = ["TraceStore", "formats", "load", "load_facts", "rollup_frames", "__version__"]
