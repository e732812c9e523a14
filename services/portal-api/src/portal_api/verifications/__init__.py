"""Phone verification by SMS one-time code (seed guide steps 9-12)."""
