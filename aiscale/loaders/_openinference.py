"""OpenInference span attributes to canonical span columns (shared by Phoenix and OTLP loaders).

Works on a frame with one column per attribute key, without any prefix
(``llm.token_count.prompt``, ``openinference.span.kind``, ...), one row per span.
Only LLM spans get token counts and reported cost: CHAIN, AGENT and root spans that
carry their children's totals keep them in ``attributes`` (counted once). An LLM span
with no token count at all is flagged ``aiscale.usage_missing`` and its tokens stay null.

Examples
--------
>>> import pandas as pd
>>> attrs = pd.DataFrame({"openinference.span.kind": ["LLM", "CHAIN"],
...                       "llm.token_count.prompt": [120, 300],
...                       "llm.token_count.completion": [8, 20],
...                       "llm.token_count.prompt_details.cache_read": [100, None]})
>>> cols, _ = map_openinference(attrs)
>>> cols[["kind", "input_tokens", "output_tokens", "cache_read_tokens"]].to_dict("list")
{'kind': ['llm', 'chain'], 'input_tokens': [120.0, nan], 'output_tokens': [8.0, nan], \
'cache_read_tokens': [100.0, nan]}
"""

from __future__ import annotations

import pandas as pd

from aiscale.loaders._platform import column, normalise_tokens, number

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
#: keys read into canonical columns; every other key stays in ``attributes``
USED = {"openinference.span.kind", "llm.model_name", "llm.provider", "llm.system", "tool.name",
        "session.id", "user.id", "metadata"}


def span_kinds(raw: pd.Series) -> pd.Series:
    """OpenInference span kinds (any case) to canonical kinds; unknown ones to ``other``."""
    return raw.astype("string").str.upper().map(KINDS).fillna("other").astype(object)


def map_openinference(attrs: pd.DataFrame, kind: pd.Series | None = None,
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map OpenInference attributes to canonical span columns.

    Parameters
    ----------
    attrs : DataFrame
        One column per attribute key (no prefix), one row per span.
    kind : Series, optional
        The span kind when the source gives it outside the attributes (Phoenix's
        ``span_kind``); else ``openinference.span.kind``.

    Returns
    -------
    (columns, keep)
        ``columns``: kind, provider, model, the five token columns, reported_cost_usd,
        tool_name, session_id, user_id, metadata. ``keep``: the attributes that stay in
        ``attributes`` (including token totals of non-LLM spans and the flags aiscale adds).
    """
    raw_kind = kind if kind is not None else column(attrs, "openinference.span.kind")
    if kind is not None and "openinference.span.kind" in attrs:
        raw_kind = raw_kind.fillna(attrs["openinference.span.kind"])
    out = pd.DataFrame(index=attrs.index)
    out["kind"] = span_kinds(raw_kind)
    is_llm = out["kind"] == "llm"
    out["model"] = column(attrs, "llm.model_name")
    out["provider"] = column(attrs, "llm.provider").fillna(column(attrs, "llm.system"))
    values = {name: number(column(attrs, key)) for name, key in TOKENS.items()}
    total = number(column(attrs, TOTAL))
    inp, outp, how = normalise_tokens(values["input_tokens"], values["output_tokens"],
                                      values["cache_read_tokens"], values["cache_write_tokens"],
                                      values["reasoning_tokens"], total)
    values["input_tokens"], values["output_tokens"] = inp, outp
    for name, series in values.items():
        out[name] = series.where(is_llm)
    cost = number(column(attrs, COST_TOTAL)).fillna(
        number(column(attrs, COST_PROMPT)) + number(column(attrs, COST_COMPLETION)))
    out["reported_cost_usd"] = cost.where(is_llm)
    out["tool_name"] = column(attrs, "tool.name")
    out["session_id"] = column(attrs, "session.id")
    out["user_id"] = column(attrs, "user.id")
    out["metadata"] = column(attrs, "metadata")
    keep = attrs.drop(columns=[c for c in attrs.columns if c in USED or (
        c in TOKENS.values() or c in (TOTAL, COST_TOTAL, COST_PROMPT, COST_COMPLETION))])
    keep = _keep_counts_of_non_llm(keep, attrs, is_llm)
    no_usage = is_llm & pd.concat([values[c] for c in TOKENS], axis=1).isna().all(axis=1)
    keep["aiscale.usage_missing"] = no_usage.where(no_usage)
    keep["aiscale.tokens_normalised"] = how.where(is_llm & (how != "")).replace("", None)
    return out, keep


def _keep_counts_of_non_llm(keep: pd.DataFrame, attrs: pd.DataFrame, is_llm: pd.Series,
                            ) -> pd.DataFrame:
    """Token and cost attributes of non-LLM spans (children's totals) stay, as exported."""
    keep = keep.copy()
    for key in (*TOKENS.values(), TOTAL, COST_TOTAL, COST_PROMPT, COST_COMPLETION):
        if key in attrs:
            keep[key] = attrs[key].where(~is_llm)
    if TOTAL in attrs:
        keep[TOTAL] = attrs[TOTAL]
    return keep
