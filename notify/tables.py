"""Imports every table module so `Base.metadata` holds the whole schema (for migrations)."""

from notify import models  # noqa: F401
from notify.db import Base

metadata = Base.metadata
