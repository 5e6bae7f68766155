"""Analyses over trace facts (and spans where per-call data is needed), grouped by the question.

``tokens/`` (what a task costs), ``loops/`` (how loops behave), ``reliability/`` (how often it
works), ``tradeoffs/`` (what reliability costs), ``change/`` (what comes next), ``spend/`` (the bill);
``_result`` is the one result kit and ``_stats`` the one statistics kit. Nothing heavy is imported here.
"""
