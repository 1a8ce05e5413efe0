"""FCM HTTP v1 simulator (see `sandbox.fcm.server`)."""

from sandbox.fcm.server import FcmSandbox, create_fcm_app

__all__ = ["FcmSandbox", "create_fcm_app"]
