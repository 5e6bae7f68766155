"""What a task costs in tokens and dollars: distributions, families, tails, predictability, drivers, attribution."""
