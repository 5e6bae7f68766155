"""How reliable a configuration is: success rates, pass@k / pass^k, consistency, paired comparison, power."""
