"""stats area."""
