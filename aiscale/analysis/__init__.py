"""Analyses over trace facts (and spans where per-call data is needed).

Each module answers one question and returns small frozen result objects; import the
module you need (``from aiscale.analysis import loops``). Nothing heavy is imported here.
"""
