"""`python -m bench <name> [args]`: imports `bench.<name>` and calls its `main(argv)`."""

from __future__ import annotations

import importlib
import sys


def run(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: python -m bench <name> [args]")
    module = importlib.import_module(f"bench.{argv[0]}")
    module.main(argv[1:])


if __name__ == "__main__":
    run(sys.argv[1:])
