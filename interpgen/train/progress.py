"""The training progress display: a tqdm bar on a terminal (loss in its postfix), plain lines
otherwise (a log file, CI): one when training starts, one after the first step, one at every
logged step: ``step 1200/3000  loss 0.8123  96.1 steps/s  0:19 left``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``; unknown (inf, nan) -> ``"?"``."""
    if not seconds == seconds or seconds == float("inf") or seconds < 0:
        return "?"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``stream`` defaults to stderr; ``live`` (default: whether it is a terminal) picks the bar
    over plain lines; ``enabled=False`` prints nothing."""

    def __init__(self, total: int, *, start: int = 0, enabled: bool = True, stream: TextIO | None = None,
                 live: bool | None = None, refresh_seconds: float = 0.1):
        self.total, self.enabled, self.start = total, enabled, start
        self.stream = stream if stream is not None else sys.stderr
        self.live = live if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.refresh_seconds = refresh_seconds
        self._mark_step, self._mark_time = start, time.perf_counter()
        self._rate: float | None = None
        self._last_loss = 0.0
        self.bar = (tqdm(total=total, initial=start, file=self.stream, unit="step", dynamic_ncols=True,
                         mininterval=refresh_seconds, smoothing=0.1) if enabled and live else None)
        if enabled and not self.live and start < total:
            self._write(f"training from step {start} to {total}")

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def rate(self, step: int) -> float | None:
        """Steps per second since the last logged step (None before the first step completes)."""
        elapsed = time.perf_counter() - self._mark_time
        if step > self._mark_step and elapsed > 0:
            return (step - self._mark_step) / elapsed
        return self._rate

    def line(self, step: int, loss: float | None) -> str:
        rate = self.rate(step)
        left = (self.total - step) / rate if rate else float("inf")
        loss_text = f"{loss:.4g}" if loss is not None else "-"
        rate_text = f"{rate:.1f}" if rate is not None else "-"
        return f"step {step}/{self.total}  loss {loss_text}  {rate_text} steps/s  {format_duration(left)} left"

    def wants_loss(self, step: int) -> bool:
        """Whether :meth:`tick` after ``step`` will show a loss (so it is worth fetching)."""
        if not self.enabled:
            return False
        if self.bar is None:
            return step == self.start + 1
        return time.perf_counter() - self._last_loss >= self.refresh_seconds

    def tick(self, step: int, loss_now: float | None = None) -> None:
        """After every step: move the bar (its loss when given); in plain mode, the first step's line."""
        if self.bar is not None:
            if loss_now is not None:
                self._last_loss = time.perf_counter()
                self.bar.set_postfix(loss=f"{loss_now:.4g}", refresh=False)
            self.bar.update(step - self.bar.n)
        elif self.enabled and loss_now is not None:
            self._write(self.line(step, loss_now))

    def log(self, step: int, loss: float) -> float | None:
        """At a logged step: the plain line (or the bar's loss); a new rate window begins.
        Returns the steps per second over the window that ended."""
        rate = self.rate(step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self.bar.update(step - self.bar.n)
        elif self.enabled:
            self._write(self.line(step, loss))
        self._rate = rate
        self._mark_step, self._mark_time = step, time.perf_counter()
        return rate

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
