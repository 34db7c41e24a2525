"""Stopping a run at a safe point on SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("tokenq")


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM ask a run to stop at its next safe point, where the driver writes a final
    checkpoint, replay snapshot and summary. A second signal interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # Python lets only the main thread set handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping at the next safe point (send it again to stop at once)", self.name)

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name
