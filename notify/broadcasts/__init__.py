"""broadcasts area."""
