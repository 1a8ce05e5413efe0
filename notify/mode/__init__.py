"""Disaster mode: rich menus as configuration and their images (pure parts).

The switch itself (default menu, per-user relinks, app message, audit) builds on these.
"""
