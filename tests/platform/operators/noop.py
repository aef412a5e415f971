"""No-op operator (engine overhead benchmark)."""
