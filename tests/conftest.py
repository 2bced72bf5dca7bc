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

# A cache of this session's own (reference statistics, ...): the tests see what a fresh
# machine sees, not what earlier runs on this one left in ~/.cache/jgan.
if "JGAN_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile
    os.environ["JGAN_CACHE_DIR"] = tempfile.mkdtemp(prefix="jgan-test-cache-")
    atexit.register(shutil.rmtree, os.environ["JGAN_CACHE_DIR"], ignore_errors=True)
