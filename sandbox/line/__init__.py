"""LINE Messaging API simulator (API host and data host on one port).

`LineSandbox` runs it inside the current event loop; `python -m sandbox.line --port N` runs it
as its own process (the hub's workers and the benchmark talk to it over HTTP).
"""

from .server import DEFAULT_SPEC_DIR, SANDBOX_TOKEN, LineSandbox
from .state import LineConfig

__all__ = ["DEFAULT_SPEC_DIR", "SANDBOX_TOKEN", "LineConfig", "LineSandbox"]
