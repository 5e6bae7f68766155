"""OpenInference span attributes: the keys and kinds the Phoenix loader reads into canonical columns.

Only LLM spans get token counts and reported cost: CHAIN, AGENT and root spans that carry
their children's totals keep them in ``attributes`` (counted once). The mapping itself is the
Phoenix loader's SQL (:mod:`aiscale.loaders.phoenix`).

Examples
--------
>>> KINDS["RETRIEVER"], TOKENS["cache_read_tokens"]
('retrieval', 'llm.token_count.prompt_details.cache_read')
"""

from __future__ import annotations

KINDS = {
    "LLM": "llm", "CHAIN": "chain", "TOOL": "tool", "AGENT": "agent", "RETRIEVER": "retrieval",
    "RERANKER": "retrieval", "EMBEDDING": "embedding", "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator", "PROMPT": "other", "UNKNOWN": "other",
}
TOKENS = {
    "input_tokens": "llm.token_count.prompt",
    "output_tokens": "llm.token_count.completion",
    "cache_read_tokens": "llm.token_count.prompt_details.cache_read",
    "cache_write_tokens": "llm.token_count.prompt_details.cache_write",
    "reasoning_tokens": "llm.token_count.completion_details.reasoning",
}
TOTAL = "llm.token_count.total"
COST_TOTAL, COST_PROMPT, COST_COMPLETION = "llm.cost.total", "llm.cost.prompt", "llm.cost.completion"
