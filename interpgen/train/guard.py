"""Runs that survive their operators: one writer per run directory, and SIGTERM / SIGINT turned into
a checkpoint at the current step (docs/training.md, "Faults").

The lock is ``RUN/.lock``, created with ``O_EXCL`` and holding the writer's process id, host and
process start time. A second writer is refused with the holder named; a lock whose process is gone
(same host: no such process id, or another process started since) is taken over with a note.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

LOCK = ".lock"


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused id apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the lock's process may still run (always True for another host: it cannot be seen)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = int(holder.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    started = _started(pid)
    return holder.get("started") is None or started is None or started == holder["started"]


def read_lock(run: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads((Path(run) / LOCK).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": "?", "host": "?"}  # unreadable: treated as held
    return holder if isinstance(holder, dict) else {"pid": "?", "host": "?"}


def held_message(run: Path, holder: dict[str, Any]) -> str:
    return (f"{run} is in use by process {holder.get('pid')} on host {holder.get('host')} (since "
            f"{holder.get('since', '?')}); wait for it to finish, or delete {Path(run) / LOCK} if that process is gone")


def check_lock(run: Path) -> None:
    """Raise ValueError when a live process holds the run directory."""
    holder = read_lock(run)
    if holder is not None and _alive(holder):
        raise ValueError(held_message(run, holder))


def acquire(run: Path) -> None:
    """Take the run directory's lock (creating the folder), or raise ValueError naming its holder."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _started(os.getpid()),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(run / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(run)
            if holder is not None and _alive(holder):
                raise ValueError(held_message(run, holder)) from None
            if holder is not None:
                print(f"note: {run / LOCK} was held by process {holder.get('pid')} on {holder.get('host')}, which is "
                      "gone; taking it over", file=sys.stderr)
            (run / LOCK).unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(me))
        return
    raise ValueError(f"cannot take the lock {run / LOCK}: other processes keep taking it")


def release(run: Path) -> None:
    """Remove the lock if this process holds it."""
    holder = read_lock(run)
    if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        (Path(run) / LOCK).unlink(missing_ok=True)


class StopSignals:
    """While active (``with``), SIGTERM and SIGINT set ``received`` (the signal's name) instead of
    killing the process, so the loop can save at the end of its step; a second SIGINT interrupts
    at once. Only in the main thread (elsewhere Python cannot install handlers: nothing changes)."""

    NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = self.NAMES[signum]

    def __enter__(self) -> StopSignals:
        if self.enabled:
            for signum in self.NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
