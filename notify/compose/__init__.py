"""Compose: staff-written message templates rendered per channel and language."""
