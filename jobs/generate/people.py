"""Households of people at addresses, streamed one household at a time.

Each household has a type that sets its members' ages (so the place gets a
realistic age structure), shares an address history (moves happen to the
whole household) and usually a family name. People carry what the care model
needs: frailty, a death date if they die in the period, and their true
identity, from which every feed's (noisy) copy is drawn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from jobs.generate.geography import Address, Geography
from jobs.generate.names import family_name, given_name
from jobs.generate.nhs import NhsNumbers
from jobs.generate.reference import ETHNIC_GROUPS

# name, weight, adult age range, number of adults, children (min, max)
HOUSEHOLD_TYPES = [
    ("older_single", 0.16, (65, 101), 1, (0, 0)),
    ("older_couple", 0.10, (65, 95), 2, (0, 0)),
    ("single_adult", 0.17, (18, 64), 1, (0, 0)),
    ("couple", 0.15, (20, 64), 2, (0, 0)),
    ("couple_children", 0.22, (22, 55), 2, (1, 3)),
    ("lone_parent", 0.09, (18, 50), 1, (1, 3)),
    ("shared", 0.07, (18, 40), 3, (0, 0)),
    ("multigenerational", 0.04, (25, 50), 2, (1, 2)),
]
_TYPE_WEIGHTS = [t[1] for t in HOUSEHOLD_TYPES]
_ETHNIC_WEIGHTS = [g[2] for g in ETHNIC_GROUPS]
# Frailty (0 fit, 1 mild, 2 moderate, 3 severe) by age: P(frail at all), then its severity.
_FRAIL_BY_AGE = [(65, 0.08), (75, 0.22), (85, 0.45), (200, 0.45)]
MOVE_RATE_PER_YEAR = 0.08
MOVE_AWAY_RATE_PER_YEAR = 0.04  # households leaving the place altogether


@dataclass(slots=True)
class Person:
    truth_id: str
    nhs_number: str
    given_name: str
    family_name: str
    sex: str  # M or F (a few U)
    date_of_birth: date
    ethnic_code: str
    frailty: int
    previous_family_name: str | None = None
    death_date: date | None = None
    born_in_period: bool = False
    mother_id: str | None = None
    left_date: date | None = None  # moved away from the place with their household


def gone_on(person: Person) -> date | None:
    """The day the person stops using the place's services: death or moving away, whichever is first."""
    return min((d for d in (person.death_date, person.left_date) if d is not None), default=None)


@dataclass(slots=True)
class Household:
    household_id: str
    kind: str
    moves: list[tuple[date, Address]]  # (from date, address), oldest first
    members: list[Person] = field(default_factory=list)
    left: date | None = None  # the day the household moved away from the place

    def address_on(self, when: date) -> Address:
        current = self.moves[0][1]
        for start, address in self.moves:
            if start <= when:
                current = address
        return current

    def previous_address_on(self, when: date) -> Address | None:
        earlier = [a for start, a in self.moves if start <= when]
        return earlier[-2] if len(earlier) >= 2 else None


def _frailty(rng: random.Random, age: int, imd_decile: int) -> int:
    if age < 65:
        return 1 if rng.random() < 0.01 else 0
    p = next(p for upper, p in _FRAIL_BY_AGE if age < upper)
    p *= 1.0 + 0.06 * (5 - imd_decile)  # deprivation brings frailty earlier
    if rng.random() >= p:
        return 0
    return rng.choices([1, 2, 3], [0.5, 0.33, 0.17])[0]


class PeopleFactory:
    """Makes households and people; owns the counters that make ids distinct."""

    def __init__(self, geography: Geography, nhs: NhsNumbers, period_start: date, as_of: date) -> None:
        self.geography = geography
        self.nhs = nhs
        self.period_start = period_start
        self.as_of = as_of
        self.people_made = 0

    def person(
        self,
        rng: random.Random,
        household_id: str,
        age: int | None,
        family_name: str,
        ethnic: tuple,
        imd_decile: int,
        dob: date | None = None,
    ) -> Person:
        pool = ethnic[3]
        sex = "U" if rng.random() < 0.002 else rng.choice("MF")
        given = given_name(rng, pool, sex)
        if dob is None:
            dob = self.period_start - timedelta(days=age * 365 + rng.randrange(365))
        age_now = (self.period_start - dob).days // 365
        person = Person(
            truth_id=f"T{self.people_made:08d}",
            nhs_number=self.nhs.take(),
            given_name=given,
            family_name=family_name,
            sex=sex,
            date_of_birth=dob,
            ethnic_code=ethnic[0],
            frailty=_frailty(rng, age_now, imd_decile),
        )
        self.people_made += 1
        return person

    def household(self, rng: random.Random, index: int, room: int) -> Household:
        """One household of at most `room` people."""
        kind, _w, (lo, hi), adults, (cmin, cmax) = rng.choices(HOUSEHOLD_TYPES, _TYPE_WEIGHTS)[0]
        ethnic = rng.choices(ETHNIC_GROUPS, _ETHNIC_WEIGHTS)[0]
        family = family_name(rng, ethnic[3])
        first = self.geography.address(rng)
        # The household lived at an older address before (some now terminated postcodes).
        previous = self.geography.address(rng, terminated=rng.random() < 0.15)
        moves = [(self.period_start - timedelta(days=rng.randrange(400, 4000)), first)]
        if rng.random() < 0.5:
            moves.insert(0, (moves[0][0] - timedelta(days=rng.randrange(400, 3000)), previous))
        period_days = (self.as_of - self.period_start).days
        if rng.random() < MOVE_RATE_PER_YEAR * period_days / 365:
            moves.append((self.period_start + timedelta(days=rng.randrange(period_days)), self.geography.address(rng)))
        household = Household(f"H{index:08d}", kind, moves)
        if rng.random() < MOVE_AWAY_RATE_PER_YEAR * period_days / 365:
            household.left = self.period_start + timedelta(days=rng.randrange(period_days))
            # A move within the place after leaving it never happened.
            household.moves = [m for m in moves if m[0] < household.left] or moves[:1]
        imd = first.lsoa.imd_decile

        lead_age = rng.randint(lo, hi - 1)
        for a in range(min(adults, room)):
            age = lead_age if a == 0 else max(18, min(100, lead_age + rng.randint(-6, 6)))
            if kind == "shared":
                age = rng.randint(lo, hi)
                family = family_name(rng, ethnic[3])
            person = self.person(rng, household.household_id, age, family, ethnic, imd)
            if a == 1 and person.sex == "F" and rng.random() < 0.4:
                # Took the family name on marriage; older records may carry the old one.
                person.previous_family_name = family_name(rng, ethnic[3])
            household.members.append(person)
        if kind == "multigenerational" and len(household.members) < room:
            household.members.append(self.person(rng, household.household_id, lead_age + 28, family, ethnic, imd))
        for _ in range(rng.randint(cmin, cmax)):
            if len(household.members) >= room:
                break
            child_age = rng.randint(0, max(0, min(17, lead_age - 17)))
            household.members.append(self.person(rng, household.household_id, child_age, family, ethnic, imd))
        return household

    def baby(self, rng: random.Random, household: Household, mother: Person, born: date) -> Person:
        ethnic = next(g for g in ETHNIC_GROUPS if g[0] == mother.ethnic_code)
        baby = self.person(rng, household.household_id, None, mother.family_name, ethnic, 5, dob=born)
        baby.frailty = 0
        baby.born_in_period = True
        baby.mother_id = mother.truth_id
        return baby
