"""Test configuration: eight fake CPU devices for the multi-device tests.

XLA reads XLA_FLAGS once, when jax initializes its backend, so the flag is set here,
before anything imports jax. Single-device code still places arrays on device 0.
"""
import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

# Nothing in the tests may download (the FID weights come from ../shared/data).
os.environ["JGAN_OFFLINE"] = "1"
