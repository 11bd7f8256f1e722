"""How real data goes wrong, each at a configurable rate and each recorded.

A rate is the probability that one eligible record gets that damage: a
nickname needs a given name that has one, a day/month transposition needs a
day of 12 or less that differs from the month, an old address needs an
earlier address. The generator counts eligible and damaged records per kind
and organisation type, so the truth can show each rate was honoured.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, fields
from datetime import date

from jobs.generate.reference import NICKNAMES, VARIANTS


@dataclass(frozen=True)
class NoiseRates:
    # identity noise (per eligible record)
    typo: float = 0.02
    phonetic: float = 0.03
    nickname: float = 0.05
    swapped_names: float = 0.005
    previous_name: float = 0.25
    hyphenation: float = 0.25
    case_whitespace: float = 0.05
    dob_transposed: float = 0.01
    old_address: float = 0.1
    nhs_missing_nhs: float = 0.03
    nhs_missing_council: float = 0.45
    nhs_wrong: float = 0.005
    # duplicates
    duplicate: float = 0.005
    registered_twice: float = 0.003
    # bad rows
    impossible_date: float = 0.002
    invalid_postcode: float = 0.003
    out_of_range_code: float = 0.002
    ragged_row: float = 0.001
    # a damaged record sent again, clean, in the next delivery
    correction: float = 0.1

    @classmethod
    def parse(cls, overrides: list[str]) -> NoiseRates:
        """From KIND=RATE strings (the CLI's --noise), over the defaults."""
        known = {f.name for f in fields(cls)}
        values = {}
        for item in overrides:
            kind, _, rate = item.partition("=")
            if kind not in known:
                raise ValueError(f"unknown noise kind {kind!r}; one of {sorted(known)}")
            value = float(rate)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"noise rate for {kind} must be between 0 and 1, got {value}")
            values[kind] = value
        return cls(**values)


@dataclass(frozen=True)
class Damage:
    kind: str
    field: str
    expected: str  # what the pipeline should do about it


class Noise:
    """Applies noise with a household's random stream; counts what it did."""

    def __init__(self, rates: NoiseRates) -> None:
        self.rates = rates
        self.eligible: Counter = Counter()
        self.applied: Counter = Counter()

    def roll(self, rng: random.Random, kind: str, organisation: str, rate: float | None = None) -> bool:
        self.eligible[(kind, organisation)] += 1
        hit = rng.random() < (getattr(self.rates, kind) if rate is None else rate)
        if hit:
            self.applied[(kind, organisation)] += 1
        return hit

    def summary(self) -> list[tuple[str, str, float, int, int]]:
        rows = []
        for kind, organisation in sorted(self.eligible):
            rate_name = f"nhs_missing_{organisation}" if kind == "nhs_missing" else kind
            setting = getattr(self.rates, rate_name)
            key = (kind, organisation)
            rows.append((kind, organisation, setting, self.eligible[key], self.applied[key]))
        return rows


def typo(rng: random.Random, value: str) -> str:
    """One keyboard slip: a letter dropped, doubled, swapped with its neighbour or replaced."""
    if len(value) < 3:
        return value + value[-1]
    i = rng.randrange(1, len(value) - 1)
    how = rng.randrange(4)
    if how == 0:
        return value[:i] + value[i + 1 :]
    if how == 1:
        return value[:i] + value[i] + value[i:]
    if how == 2 and value[i] != value[i + 1]:
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    letter = rng.choice("aeiourstnl")
    return value[:i] + (letter if letter != value[i].lower() else "x") + value[i + 1 :]


def nickname(rng: random.Random, given: str) -> str | None:
    options = NICKNAMES.get(given)
    return rng.choice(options) if options else None


def variant(rng: random.Random, name: str) -> str | None:
    options = VARIANTS.get(name)
    return rng.choice(options) if options else None


def unhyphenated(rng: random.Random, family: str) -> str | None:
    """What systems do to double-barrelled names: keep one part, or lose the hyphen."""
    for mark in ("-", " "):
        if mark in family:
            first, _, second = family.partition(mark)
            return rng.choice([first, second, first + second, first + (" " if mark == "-" else "-") + second])
    return None


def case_whitespace(rng: random.Random, value: str) -> str:
    how = rng.randrange(4)
    if how == 0:
        return value.upper()
    if how == 1:
        return value.lower()
    if how == 2:
        return f"  {value} "
    return value.replace(" ", "  ").replace("-", " - ") + " " if (" " in value or "-" in value) else f" {value.upper()}"


def transposed_dob(dob: date) -> date | None:
    if dob.day > 12 or dob.day == dob.month:
        return None
    try:
        return dob.replace(day=dob.month, month=dob.day)
    except ValueError:
        return None


def wrong_nhs_number(rng: random.Random, number: str) -> str:
    """Two neighbouring digits transposed (a keying error); mostly fails Modulus 11, sometimes not."""
    positions = [i for i in range(9) if number[i] != number[i + 1]] or [0]
    i = rng.choice(positions)
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


def invalid_postcode(rng: random.Random, postcode: str) -> str:
    how = rng.randrange(3)
    if how == 0:
        return postcode[:-1]  # a character lost
    if how == 1:
        return postcode.replace("1", "I", 1) if "1" in postcode else postcode + "Z"  # letter for digit
    return postcode[:2] + postcode[-3:]  # the district digit lost: LK 1AB


def impossible_date(spark_format: str, near: date) -> str:
    """A date that cannot exist (30 February), in the feed's own format."""
    text = spark_format.replace("yyyy", f"{near.year:04d}").replace("MM", "02").replace("dd", "30")
    return text


def with_accent(name: str) -> str:
    """The name as a Latin-1 system with accents keeps it (Jose -> José)."""
    for plain, accented in zip("eaiou", "éáíóú", strict=True):
        if plain in name:
            return name.replace(plain, accented, 1)
    return name + "é"
