"""Ctrl-C and SIGTERM during training: finish the current step, checkpoint it, then stop (training/trainer.py).

    stop = StopSignals(active=True).install()
    ...                      # after each step: if stop.received, checkpoint and raise TrainingInterrupted
    stop.restore()
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopSignals:
    """While active, the first SIGINT / SIGTERM only sets `received` (the loop stops after the current step and
    checkpoints it, so an interrupted run loses no work even with save_every=0); the handlers are then put
    back, so a second signal stops the process at once. Only in the main thread of a single process: under
    torchrun every rank would have to agree on the step to stop at."""

    def __init__(self, active: bool) -> None:
        self.active = active and threading.current_thread() is threading.main_thread()
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        if self.active:
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup'd / background jobs keep ignoring
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name
        self.restore()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
