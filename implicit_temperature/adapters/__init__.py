"""Model adapters (each a plugin)."""
