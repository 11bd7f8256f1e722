"""`placelake` in a subprocess, as an operator runs it, and stopping what a test started.

The integration, cluster and reliability suites all start whole pipelines this
way (importable from any test: tests/ is on sys.path beside tests/conftest.py).
Each run is its own process group, so its Spark JVM dies with it whether it
finishes, times out or is killed on purpose; its output goes to files beside
its home (``<home>-logs/<log_name>.out`` and ``.err``), kept for a post-mortem.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from jobs.config import REPO_ROOT


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def tail(self, chars: int = 3000) -> str:
        # The command and its flags, not their values: `forget --nhs-number` is given a patient's number.
        command = " ".join(a if i == 0 or a.startswith("-") else "…" for i, a in enumerate(self.args))
        return f"placelake {command} -> {self.returncode}\n{self.stdout[-chars:]}\n{self.stderr[-chars:]}"


def placelake_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment with the lake at home, on two local cores with tiny-data settings; extra wins."""
    env = {
        **os.environ,
        "PLACELAKE_HOME": str(home),
        "PLACELAKE_SPARK_MASTER": "local[2]",
        "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        "PLACELAKE_DRIVER_MEMORY": "2g",
        **extra,
    }
    env.pop("AIRFLOW_HOME", None)  # the run sets its own, under PLACELAKE_HOME
    return env


def start(home: Path, *args: str, log_name: str, **extra_env: str) -> tuple[subprocess.Popen, Path]:
    """Start `python -m jobs.cli <args>` in its own process group (so the Spark JVM can be killed with it)."""
    logs = home.parent / f"{home.name}-logs"
    logs.mkdir(exist_ok=True)
    out = logs / log_name
    with open(f"{out}.out", "w") as stdout, open(f"{out}.err", "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", *args],
            env=placelake_env(home, **extra_env),
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return proc, out


def finish(proc: subprocess.Popen, out: Path, args: tuple[str, ...], started: float, **wait) -> Result:
    returncode = wait_for(proc, **wait)
    return _result(proc, out, args, returncode, time.monotonic() - started)


def finish_together(
    started_runs: list[tuple[subprocess.Popen, Path]], args: tuple[str, ...], started: float, timeout: float = 2700
) -> list[Result]:
    """Wait for runs started at the same moment; each Result times its own run, whichever order they end in."""
    deadline = time.monotonic() + timeout
    seconds: dict[int, float] = {}
    while len(seconds) < len(started_runs):
        for i, (proc, _) in enumerate(started_runs):
            if i not in seconds and proc.poll() is not None:
                seconds[i] = time.monotonic() - started
        if time.monotonic() > deadline:
            for proc, _ in started_runs:
                _signal_groups([proc], signal.SIGKILL)
            raise AssertionError(f"placelake took more than {timeout}s")
        time.sleep(0.2)
    return [_result(proc, out, args, proc.returncode, seconds[i]) for i, (proc, out) in enumerate(started_runs)]


def _result(proc: subprocess.Popen, out: Path, args: tuple[str, ...], returncode: int, seconds: float) -> Result:
    try:
        # The process is gone; its JVM may not be yet. A crash takes everything with it.
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return Result(
        args,
        returncode,
        Path(f"{out}.out").read_text(errors="replace"),
        Path(f"{out}.err").read_text(errors="replace"),
        seconds,
    )


def wait_for(proc: subprocess.Popen, timeout: float = 2700, kill_when: Callable[[], bool] | None = None) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"placelake took more than {timeout}s")
        if kill_when is not None and kill_when():
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run, JVM included, as a power cut would
        time.sleep(0.5)
    return proc.returncode


def placelake(
    home: Path,
    *args: str,
    log_name: str,
    timeout: float = 2700,
    kill_when: Callable[[], bool] | None = None,
    **extra_env: str,
) -> Result:
    """`placelake <args>` with the lake at home, to the end (or until kill_when says so)."""
    started = time.monotonic()
    proc, out = start(home, *args, log_name=log_name, **extra_env)
    return finish(proc, out, args, started, timeout=timeout, kill_when=kill_when)


def run(home: Path, people: int, run_date: str, *, log_name: str, **options) -> Result:
    """`placelake run` for one logical date on a generated place of people (generated by the run if landing is empty)."""
    return placelake(home, "run", "--people", str(people), "--date", run_date, log_name=log_name, **options)


def stop(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM every process we started and all their descendants (task runners, Spark JVMs), then SIGKILL."""
    family = []
    for process in processes:
        try:
            parent = psutil.Process(process.pid)
            family += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    _signal_groups(processes, signal.SIGTERM)
    for member in family:
        try:
            member.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    _signal_groups(processes, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=timeout)


def _signal_groups(processes: list[subprocess.Popen], sig: int) -> None:
    """Signal the group each process leads (started with start_new_session); never the test's own group."""
    for process in processes:
        try:
            leads = os.getpgid(process.pid) == process.pid
        except ProcessLookupError:
            leads = True  # the leader is gone; what it started may still be in its group
        if leads:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
