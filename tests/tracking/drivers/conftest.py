"""Driver-test settings: LSL discovery kept on this machine, and no thread may die silently."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

# LSL: discover streams on this computer only (loopback), quietly. Must run before liblsl's first use.
LSL_LOCAL_CONFIG = """
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
[lab]
KnownPeers = {127.0.0.1}
[log]
level = -3
"""

try:
    import pylsl
except (ImportError, RuntimeError):  # pragma: no cover - pylsl is in the pinned environment
    pylsl = None
else:
    pylsl.set_config_content(LSL_LOCAL_CONFIG)


@pytest.fixture
def thread_failures() -> Iterator[list[threading.ExceptHookArgs]]:
    """Collects exceptions that escape any thread during the test; the test fails if there are any."""
    failures: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = failures.append
    try:
        yield failures
    finally:
        threading.excepthook = previous
    assert not failures, f"exceptions escaped threads: {[f.exc_value for f in failures]!r}"
