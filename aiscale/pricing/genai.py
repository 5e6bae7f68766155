"""Per-token rates from genai-prices' bundled data (no network), for one model over many days.

Model names are resolved the way sources write them: ``google/gemini-3-pro-preview``
(OpenRouter and LiteLLM ``vendor/model``), ``openrouter/google/...``, dated snapshots
(``gpt-4o-2024-08-06``) and compact dates (``...-20251118``). The first candidate that
genai-prices knows wins; the provider's own listing is tried before the vendor's.

Examples
--------
>>> import datetime as dt
>>> rows = genai_rates("openrouter", "google/gemini-3-pro-preview", [dt.date(2025, 11, 19)])
>>> rows[0]["input_usd_per_token"] * 1e6, rows[0]["matched_model"]
(2.0, 'gemini-3-pro-preview')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import lru_cache

# the columns of a rate table (:func:`aiscale.pricing.rates.rate_table`): rates per token (per
# call), input-size tier bounds, and the key and source of each row, as :func:`genai_rates` writes them
RATE_COLUMNS = (
    "input_usd_per_token", "cache_read_usd_per_token", "cache_write_usd_per_token",
    "output_usd_per_token", "reasoning_usd_per_token", "call_usd",
)
TIER_COLUMNS = ("min_input_tokens", "max_input_tokens")
RATE_TABLE_COLUMNS = ("provider", "model", "day", *TIER_COLUMNS, *RATE_COLUMNS,
                      "matched_model", "price_source")

# genai-prices price keys -> aiscale rate columns (USD per token; requests are per 1,000)
_PRICE_KEYS = {
    "input_mtok": "input_usd_per_token",
    "cache_read_mtok": "cache_read_usd_per_token",
    "cache_write_mtok": "cache_write_usd_per_token",
    "output_mtok": "output_usd_per_token",
    "output_reasoning_mtok": "reasoning_usd_per_token",
    "requests_kcount": "call_usd",
}
_PER = {"requests_kcount": 1_000}


@lru_cache(maxsize=1)
def genai_version() -> str:
    """Return the installed genai-prices version (its bundled data is dated by it).

    Read from the package's metadata: importing genai-prices (its data snapshot) costs
    ~0.3 s, which a store whose facts are kept (their cache key names this version) never
    needs to pay.
    """
    import importlib.metadata

    try:
        return importlib.metadata.version("genai-prices")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree without metadata
        import genai_prices

        return str(genai_prices.__version__)


def _candidates(provider: str | None, model: str) -> Iterator[tuple[str | None, str]]:
    """Yield (provider_id, model_ref) pairs to try, most specific first."""
    model = model.strip()
    parts = [p for p in model.split("/") if p]
    yield provider, model
    for i in range(1, len(parts)):
        rest = "/".join(parts[i:])
        yield parts[i - 1], rest
        yield provider, rest
    yield None, parts[-1] if parts else model


@lru_cache(maxsize=4096)
def resolve(provider: str | None, model: str):
    """Return genai-prices' (Provider, ModelInfo) for a source's provider and model, or None.

    Parameters
    ----------
    provider : str or None
        Provider as the source wrote it (``openai``, ``openrouter``, ``litellm``, ...).
    model : str
        Model name as the source wrote it.

    Examples
    --------
    >>> resolve("openai", "gpt-4o-2024-08-06")[1].id
    'gpt-4o'
    >>> resolve(None, "no-such-model-xyz") is None
    True
    """
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    seen = set()
    for provider_id, ref in _candidates(provider, model):
        if (provider_id, ref) in seen or not ref:
            continue
        seen.add((provider_id, ref))
        try:
            return snapshot.find_provider_model(ref, None, provider_id or None, None)
        except LookupError:
            continue
    return None


def _as_float(value: object, key: str) -> float:
    return float(Decimal(value) / _PER.get(key, 1_000_000))


def _tier_rows(model_price) -> list[dict]:
    """Split a ModelPrice into rows over input-size intervals (tiers apply to all tokens)."""
    from genai_prices.types import TieredPrices

    prices = {k: getattr(model_price, k, None) for k in _PRICE_KEYS}
    prices = {k: v for k, v in prices.items() if v is not None}
    starts = sorted({t.start for v in prices.values() if isinstance(v, TieredPrices) for t in v.tiers})
    bounds = [None, *starts]
    rows = []
    for i, low in enumerate(bounds):
        high = bounds[i + 1] if i + 1 < len(bounds) else None
        row = {"min_input_tokens": low, "max_input_tokens": high}
        for key, value in prices.items():
            if isinstance(value, TieredPrices):
                rate = value.base
                for tier in value.tiers:  # sorted ascending: the last tier crossed wins
                    if low is not None and low >= tier.start:
                        rate = tier.price
                value = rate
            row[_PRICE_KEYS[key]] = _as_float(value, key)
        rows.append(row)
    return rows


def genai_rates(provider: str | None, model: str, days: Iterable[dt.date]) -> list[dict]:
    """Return rate rows for one (provider, model) on each day, or [] when genai-prices lacks it.

    Each row has ``day``, the rate columns that the model is priced in, tier bounds
    ``min_input_tokens`` (exclusive) / ``max_input_tokens`` (inclusive), ``matched_model``
    and ``price_source``. The price in force at noon UTC of the day is used.
    """
    found = resolve(provider, model)
    if found is None:
        return []
    gp_provider, info = found
    source = f"genai-prices {genai_version()}: {gp_provider.id}/{info.id}"
    rows = []
    for day in days:
        noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc)
        for row in _tier_rows(info.get_prices(noon)):
            rows.append({"day": day, **row, "matched_model": info.id, "price_source": source})
    return rows
