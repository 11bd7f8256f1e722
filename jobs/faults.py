"""A test-only crash switch: ``PLACELAKE_TEST_KILL_AT=<point>`` makes the process SIGKILL itself there.

The reliability suite (tests/reliability/test_crash.py) uses it to stop a run at
a named moment, with no chance to clean up, as a power cut or an OOM killer
would. Unset (always, outside that suite) it does nothing. The points:

- ``land.after_bronze``   a source's rows are in bronze; its quarantine rows and the manifest are not
- ``link.splink``        Splink has trained the model (on either engine); no pair is scored, no link written
- ``publish.before``      every staged gold table passed the gate; nothing is published yet
- ``publish.midway``      the first gold table is published; the others are not
"""

from __future__ import annotations

import os
import signal

KILL_AT = "PLACELAKE_TEST_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
