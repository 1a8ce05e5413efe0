"""delivery area."""
