"""`placelake forget`'s input handling, without Spark (runs in `make test` too)."""

from __future__ import annotations

import re

import pytest

from jobs.cli import main
from jobs.forget import ForgetError, erasure_id, nhs_number, number_pattern


def test_an_nhs_number_may_be_typed_with_spaces_or_dashes():
    assert nhs_number("999 123 4567") == nhs_number("999-123-4567") == nhs_number("9991234567") == "9991234567"


@pytest.mark.parametrize("typed", ["999 123 456", "99912345678", "999l234567", ""])
def test_a_malformed_number_is_refused_without_echoing_it(typed):
    with pytest.raises(ForgetError) as caught:
        nhs_number(typed)
    assert typed.replace(" ", "") not in str(caught.value) or not typed


def test_the_cli_refuses_a_malformed_number_before_starting_spark(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PLACELAKE_HOME", str(tmp_path))
    assert main(["forget", "--nhs-number", "12345"]) == 2
    err = capsys.readouterr().err
    assert "must be 10 digits" in err and "12345" not in err


def test_the_pattern_finds_the_number_as_delivered_and_nothing_longer():
    pattern = re.compile(number_pattern(["9991234567"]))
    assert pattern.search('R1,"999 123 4567",Smith')
    assert pattern.search("x,999-123-4567,y") and pattern.search("9991234567")
    assert not pattern.search("19991234567") and not pattern.search("99912345678") and not pattern.search("9991234566")


def test_the_erasure_id_is_keyed_and_hides_the_number():
    one, other = erasure_id("9991234567", "k" * 32), erasure_id("9991234567", "j" * 32)
    assert one != other and len(one) == 64 and "9991234567" not in one


def test_numbers_can_come_from_stdin_so_they_stay_out_of_ps(capsys, monkeypatch, tmp_path):
    """Validated like typed ones: a bad line is refused before Spark starts, and not echoed."""
    import io

    monkeypatch.setenv("PLACELAKE_HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("999 123 4567\n\n12345\n"))
    assert main(["forget", "--from-file", "-"]) == 2
    err = capsys.readouterr().err
    assert "must be 10 digits" in err and "12345" not in err and "4567" not in err
