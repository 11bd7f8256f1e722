import threading
import time

import pytest

from jobs import fanout


def test_items_run_side_by_side_and_results_keep_the_items_order():
    both_started = threading.Barrier(2, timeout=10)  # broken (an error) if the two never run at once

    def work(item):
        both_started.wait()
        time.sleep(0.2 if item == "first" else 0)  # the second finishes first
        return item.upper()

    assert fanout.each(work, ["first", "second"], threads=2, name="t") == ["FIRST", "SECOND"]


def test_one_thread_works_the_items_one_after_another_in_order():
    seen = []
    assert fanout.each(lambda i: seen.append(i) or i * 2, [3, 1, 2], threads=1, name="t") == [6, 2, 4]
    assert seen == [3, 1, 2]


def test_the_first_items_error_is_raised_after_the_others_finish():
    finished = []

    def work(item):
        if item in ("b", "c"):
            raise ValueError(item)
        time.sleep(0.2)
        finished.append(item)
        return item

    with pytest.raises(ValueError, match="b"):
        fanout.each(work, ["a", "b", "c", "d"], threads=2, name="t")
    assert sorted(finished) == ["a", "d"]
