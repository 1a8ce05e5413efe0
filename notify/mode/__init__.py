"""mode area."""
