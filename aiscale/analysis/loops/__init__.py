"""How agent loops behave: iteration-count laws, hazard, cost growth, stuck loops, loop budgets, length by outcome."""
