"""Stopping a CLI loop on SIGINT/SIGTERM without a lock in the signal handler.

A Python signal handler runs on the main thread between bytecodes, possibly while that
thread holds a ``threading.Event``'s lock inside ``Event.wait()``; ``Event.set()`` in the
handler then waits for that lock forever. Seen: `segments lag --watch` still running
40 minutes after Ctrl-C, its main thread in ``Event.wait`` -> handler -> ``Event.set``
(py-spy). So the handler only sets a flag, and waits sleep in short slices.
"""

from __future__ import annotations

import signal
import time
from typing import Any

SLICE_SECONDS = 0.05


class StopRequest:
    """Installed for ``signals``; ``requested`` once one arrived. ``restore()`` puts the
    previous handlers back."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.requested = False
        self._previous = {number: signal.signal(number, self._on_signal) for number in signals}

    def _on_signal(self, number: int, frame: Any) -> None:
        self.on_request(already=self.requested)
        self.requested = True

    def on_request(self, *, already: bool) -> None:
        """Called in the handler, before ``requested`` is set: nothing by default."""

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a stop is requested; whether one was."""
        deadline = time.monotonic() + seconds
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(SLICE_SECONDS, left))
        return self.requested

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
