"""Segment rules: who a broadcast is for, stored as JSON and compiled to indexed SQL."""
