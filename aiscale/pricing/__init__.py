"""Prices per token: genai-prices lookups, user price sheets, and cost per LLM span."""
