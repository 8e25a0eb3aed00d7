"""The training progress display: loss, steps per second and time left.

On a terminal it is one line on stderr that rewrites itself (at most ten times a second);
otherwise (a log file, CI) it prints one plain line at every logged step.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``; unknown (inf, nan) -> ``"?"``."""
    if not seconds == seconds or seconds == float("inf") or seconds < 0:
        return "?"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Shows ``step / total``, the loss, steps per second and the time left.

    ``stream`` defaults to stderr; ``live`` (default: whether the stream is a terminal) picks the
    rewriting line over plain lines. A disabled progress (``enabled=False``) prints nothing."""

    def __init__(self, total: int, *, start: int = 0, enabled: bool = True, stream: TextIO | None = None,
                 live: bool | None = None, refresh_seconds: float = 0.1):
        self.total, self.enabled = total, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.live = live if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.refresh_seconds = refresh_seconds
        self._mark_step, self._mark_time = start, time.perf_counter()
        self._rate: float | None = None
        self._last_draw = 0.0
        self._width = 0

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

    def tick(self, step: int, loss_now: float | None = None) -> bool:
        """Called after every step; redraws the live line when due. Returns whether it drew
        (the caller computes ``loss_now`` only when ``wants_loss()`` says so)."""
        if not (self.enabled and self.live):
            return False
        now = time.perf_counter()
        if now - self._last_draw < self.refresh_seconds and step < self.total:
            return False
        self._last_draw = now
        text = self.line(step, loss_now)
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        return True

    def wants_loss(self) -> bool:
        """Whether the next ``tick`` may draw (so the current loss is worth fetching)."""
        return self.enabled and self.live and time.perf_counter() - self._last_draw >= self.refresh_seconds

    def log(self, step: int, loss: float) -> float | None:
        """At a logged step: print the line (plain mode) and start a new rate window.
        Returns the steps per second over the window that ended."""
        rate = self.rate(step)
        if self.enabled and not self.live:
            self.stream.write(self.line(step, loss) + "\n")
            self.stream.flush()
        elif self.enabled:
            self._last_draw = 0.0
            self.tick(step, loss)
        self._rate = rate
        self._mark_step, self._mark_time = step, time.perf_counter()
        return rate

    def close(self) -> None:
        if self.enabled and self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
