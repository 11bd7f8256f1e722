"""Peak memory of a benchmark's process tree, sampled in the background (not a benchmark itself)."""

from __future__ import annotations

import threading
import time

import psutil


class Memory:
    """Peak memory (PSS) of this process tree, split into the Python driver, JVMs and Python workers."""

    def __init__(self) -> None:
        self.peak = {"python": 0, "jvm": 0, "python_workers": 0, "total": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _pss(process: psutil.Process) -> int:
        # Proportional set size: Spark's forked Python workers share most of their pages,
        # and summing their RSS would count those pages once per worker.
        try:
            return process.memory_full_info().pss
        except (psutil.AccessDenied, AttributeError):
            return process.memory_info().rss

    def _sample(self) -> dict[str, int]:
        me = psutil.Process()
        now = {"python": self._pss(me), "jvm": 0, "python_workers": 0}
        for child in me.children(recursive=True):
            try:
                kind = "jvm" if child.name() == "java" else "python_workers"
                now[kind] += self._pss(child)
            except psutil.Error:
                pass  # a worker that exited between listing and reading
        now["total"] = sum(now.values())
        return now

    def _run(self) -> None:
        while not self._stop.is_set():
            for kind, rss in self._sample().items():
                self.peak[kind] = max(self.peak[kind], rss)
            time.sleep(0.25)

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def gib(self) -> dict[str, float]:
        return {k: round(v / 2**30, 2) for k, v in self.peak.items()}
