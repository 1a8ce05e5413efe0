"""Citizen notification hub: core (registry, compose, broadcasts, delivery, mode, statistics)."""
