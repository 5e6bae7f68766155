"""What reliability buys per dollar and per second: Pareto frontier, cascades and retries, latency."""
