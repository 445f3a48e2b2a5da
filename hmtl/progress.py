"""Progress of long work with rate and ETA: a tqdm bar in a terminal, a log line every ``log_every`` seconds when
stderr is a file (a bar's carriage returns make a log unreadable)."""
from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from tqdm import tqdm

logger = logging.getLogger("hmtl.progress")


def duration(seconds: float) -> str:
    """``42s``, ``7m05s``, ``1h02m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    def __init__(self, total: int, description: str, unit: str, initial: int = 0, log_every: float = 30.0,
                 note: Callable[[], str] | None = None):
        """``note``: what else to show (mean losses, the run's ETA), asked for only when a line or the bar is
        drawn, so the caller's loop does not build it at every step."""
        self.total, self.description, self.unit, self.log_every, self.note = total, description, unit, log_every, note
        self.done = self.initial = initial
        self.started = self.last_log = self.last_note = time.perf_counter()
        self.bar = tqdm(total=total, initial=initial, desc=description, unit=unit, dynamic_ncols=True) if sys.stderr.isatty() else None

    def eta(self) -> float | None:
        """Seconds left at the rate since the start (None before the first unit)."""
        elapsed, done = time.perf_counter() - self.started, self.done - self.initial
        return elapsed / done * (self.total - self.done) if done else None

    def rate(self) -> float:
        return (self.done - self.initial) / max(time.perf_counter() - self.started, 1e-9)

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.bar is not None:
            if self.note is not None and now - self.last_note >= 1.0:  # the bar redraws a few times a second
                self.last_note = now
                self.bar.set_postfix_str(self.note(), refresh=False)
            self.bar.update(n)
        elif now - self.last_log >= self.log_every or self.done == self.total:
            self.last_log = now
            eta, note = self.eta(), self.note() if self.note is not None else ""
            logger.info("%s: %d/%d %s (%.1f %s/s), ETA %s%s", self.description, self.done, self.total, self.unit,
                        self.rate(), self.unit, duration(eta) if eta is not None else "?", f", {note}" if note else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
