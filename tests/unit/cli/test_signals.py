"""The CLI's stop on a signal: the handler only sets a flag, and waiting on it sleeps in
slices (a threading.Event set from a handler can deadlock the main thread)."""

from __future__ import annotations

import os
import signal
import threading
import time

from stream.cli.signals import StopRequest


def test_a_signal_ends_the_wait_early_and_restore_puts_the_handler_back() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest((signal.SIGUSR1,))
    try:
        assert stop.wait(0.1) is False and not stop.requested
        threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        assert stop.wait(30) is True
        assert time.monotonic() - started < 5 and stop.requested
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGUSR1) == previous


def test_the_second_signal_is_told_it_is_the_second() -> None:
    """`segments lag --watch` exits at once on a second Ctrl-C: on_request says which."""
    calls: list[bool] = []

    class Counting(StopRequest):
        def on_request(self, *, already: bool) -> None:
            calls.append(already)

    stop = Counting((signal.SIGUSR1,))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.wait(5)
        assert calls == [False, True]
    finally:
        stop.restore()
