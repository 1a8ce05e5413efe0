"""Local provider simulators (LINE, FCM HTTP v1, SMTP): real servers on 127.0.0.1.

They follow the providers' published contracts, keep a request log and per-recipient
counters, and can be told to fail (see `sandbox.common`). `python -m sandbox` runs all of them.
"""
