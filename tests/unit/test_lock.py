import threading
import time

import pytest

from jobs.config import Settings
from jobs.lock import LakeLocked, lake_lock


def test_a_second_writer_is_refused_at_once_and_told_who_holds_the_lake(tmp_path):
    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    with lake_lock(settings, "run"):
        with pytest.raises(LakeLocked, match=r"holds the lake lock since 20\S+ \(pid \d+, placelake run\)"):
            with lake_lock(settings, "forget"):
                pass
    with lake_lock(settings, "forget"):  # released on exit: the next writer gets it
        pass


def test_a_writer_refused_while_the_holder_is_still_writing_its_name_waits_for_the_name(tmp_path):
    """flock is taken before the holder writes its name: a refusal in that instant must not come nameless."""
    import fcntl

    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    path = tmp_path / ".lake.lock"
    with open(path, "a+", encoding="utf-8") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, not yet named

        def name_it():
            time.sleep(0.3)
            held.write('{"pid": 4242, "command": "run", "since": "2026-11-26T18:00:00+00:00"}')
            held.flush()

        writer = threading.Thread(target=name_it)
        writer.start()
        with pytest.raises(LakeLocked, match=r"since 2026-11-26T18:00:00\+00:00 \(pid 4242, placelake run\)"):
            with lake_lock(settings, "run"):
                pass
        writer.join()
