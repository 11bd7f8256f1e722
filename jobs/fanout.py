"""Independent tables worked on side by side, in threads of one Spark session.

A stage's time on a small or middling lake is mostly the driver's: planning,
Delta's log, Python between jobs. While one table waits on those, another
table's tasks can use the cores. Spark runs jobs from several threads of one
session at once; each piece of work writes only its own tables (a table two
of them share takes one writer at a time: see clean._SHARED_WRITE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(work: Callable[[T], R], items: Iterable[T], threads: int, name: str) -> list[R]:
    """work(item) for every item, up to `threads` at once; results in the items' order.

    The first item's error (in item order) is raised once every started item
    has finished, as a loop over the items would raise it, but later items may
    have run too: work must be safe to repeat (landing and cleaning are).
    """
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) as pool:
        futures = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]
