"""Session-wide test setup."""

from __future__ import annotations

import signal
import threading

import pytest


@pytest.fixture(autouse=True, scope="session")
def _sigint_raises_keyboard_interrupt():
    """The Ctrl-C tests need Python's SIGINT handler, here and in the processes they start. A shell without
    job control starts background commands with SIGINT ignored (``cmd &`` in a script), and pytest, and
    every process it starts, would inherit that."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
