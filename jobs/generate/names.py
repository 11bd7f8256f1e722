"""How often each name is drawn: a long tail, the same at every size of place.

A family name's share falls with its rank as surname counts do in England
and Wales: the commonest name of a pool (Smith) holds `top share` of it, the
r-th holds top share x r^-0.6 (the 50th British name about 0.1%), and the
rest of the pool is spread evenly over the long tail of names made from the
pool's name parts (FAMILY_NAME_PARTS). A pool with no tail (a naming
tradition with few surnames, such as Chinese or Indian) shares everything
among its listed names by the same rank rule.

Why it matters: linkage blocks on names. When the first name of a list took
more than half of every draw, a generated city of 1M people had blocks of a
thousand namesakes born in the same year, which no real city has, and the
benchmark measured the generator, not the pipeline.

Given names are drawn from the pool's list by a gentler rank rule (r^-0.4:
the commonest British boy's name about 4% of boys).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from jobs.generate.reference import FAMILY_NAME_PARTS, FAMILY_NAME_TOP_SHARE, FAMILY_NAMES, GIVEN_NAMES

FAMILY_RANK_EXPONENT = 0.6
GIVEN_RANK_EXPONENT = 0.4


@dataclass(frozen=True)
class NameTable:
    """Names with the cumulative weights to draw them by (one rng.random() a draw)."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def from_weights(cls, weighted: dict[str, float]) -> NameTable:
        total = sum(weighted.values())
        return cls(tuple(weighted), tuple(c / total for c in accumulate(weighted.values())))

    def draw(self, rng: random.Random) -> str:
        return self.names[min(bisect(self.cumulative, rng.random()), len(self.names) - 1)]


def ranked(names: list[str], exponent: float, scale: float = 1.0) -> dict[str, float]:
    return {name: scale * rank**-exponent for rank, name in enumerate(names, start=1)}


def tail_names(pool: str) -> list[str]:
    """Every prefix+suffix of the pool's name parts, in a fixed order, without its listed names."""
    listed = set(FAMILY_NAMES[pool])
    made = (
        prefix + suffix for prefixes, suffixes in FAMILY_NAME_PARTS[pool] for prefix in prefixes for suffix in suffixes
    )
    return [name for name in dict.fromkeys(made) if name not in listed]


def family_table(pool: str) -> NameTable:
    head, tail = FAMILY_NAMES[pool], tail_names(pool)
    if not tail:
        return NameTable.from_weights(ranked(head, FAMILY_RANK_EXPONENT))
    weights = ranked(head, FAMILY_RANK_EXPONENT, FAMILY_NAME_TOP_SHARE[pool])
    rest = 1.0 - sum(weights.values())
    if rest <= 0:
        raise ValueError(f"family names of pool {pool}: the listed names already take {1 - rest:.0%} of draws")
    return NameTable.from_weights(weights | dict.fromkeys(tail, rest / len(tail)))


FAMILY_TABLES = {pool: family_table(pool) for pool in FAMILY_NAMES}
GIVEN_TABLES = {
    (pool, sex): NameTable.from_weights(ranked(names, GIVEN_RANK_EXPONENT))
    for pool, by_sex in GIVEN_NAMES.items()
    for sex, names in by_sex.items()
}


def family_name(rng: random.Random, pool: str) -> str:
    return FAMILY_TABLES[pool].draw(rng)


def given_name(rng: random.Random, pool: str, sex: str) -> str:
    """A girl's name for F; a boy's for M and for the few of unknown sex."""
    return GIVEN_TABLES[pool, "F" if sex == "F" else "M"].draw(rng)
