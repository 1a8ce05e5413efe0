"""Imports every table module so `Base.metadata` holds the whole schema (for migrations)."""

from notify import models  # noqa: F401
from notify.broadcasts import tables as broadcasts_tables  # noqa: F401
from notify.db import Base
from notify.delivery import tables as delivery_tables  # noqa: F401
from notify.mode import tables as mode_tables  # noqa: F401
from notify.stats import tables as stats_tables  # noqa: F401

metadata = Base.metadata
