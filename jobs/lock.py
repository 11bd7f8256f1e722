"""One writer at a time: the lake lock that `placelake run`, `rebuild` and `forget` hold.

The DAGs say max_active_runs=1, but that only binds a scheduler: `placelake run`
runs them in-process (dag.test), so two shells could build the same lake at
once and interleave their replaceWhere and MERGE commits. Delta would keep
each table consistent, not the set of them. The lock is an advisory
``flock`` on ``$PLACELAKE_HOME/.lake.lock``: the kernel drops it when its
holder exits, however it exits (SIGKILL included), so a crashed run never
leaves the lake locked. The file names the holder (pid, command, since) so
the refusal can say who holds it. Readers (`placelake sql`, the Thrift
server, deltalake) never take it: Delta gives them snapshots.

On an object-store PLACELAKE_HOME there is no flock: there, one scheduler
with max_active_runs=1 is the guard (see README "On a cluster").
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Generator
from contextlib import contextmanager
from datetime import UTC, datetime

from jobs.config import Settings

log = logging.getLogger(__name__)

LOCK_FILE = ".lake.lock"


class LakeLocked(RuntimeError):
    pass


def _holder(handle, wait_s: float = 2.0) -> str:
    # The holder writes its name just after it takes the lock: a run refused in that instant
    # would find the file empty (or half written), so it waits a moment for the name.
    deadline = time.monotonic() + wait_s
    while True:
        handle.seek(0)
        try:
            held = json.loads(handle.read() or "{}")
        except ValueError:
            held = {}
        if held or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if not held:
        return "another run holds the lake lock"
    return (
        f"another run holds the lake lock since {held.get('since', '?')} "
        f"(pid {held.get('pid', '?')}, placelake {held.get('command', '?')})"
    )


@contextmanager
def lake_lock(settings: Settings, command: str) -> Generator[None]:
    """Hold the lake's write lock for the block; LakeLocked at once if another process holds it."""
    if not settings.is_local():
        log.warning("PLACELAKE_HOME is not a local path: no lake lock; rely on max_active_runs=1")
        yield
        return
    os.makedirs(settings.home, exist_ok=True)
    path = settings.path(LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LakeLocked(f"{_holder(handle)}; nothing was written: try again when it ends") from None
        try:
            handle.seek(0)
            handle.truncate()
            since = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(json.dumps({"pid": os.getpid(), "command": command, "since": since}))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
