"""The place's geography: 10 wards, 100 LSOAs, their postcodes and IMD deciles.

Each LSOA has 30 live postcodes, or more in a large place: a UK postcode holds
about 40 people (1.7M postcodes for 67M), so a place of 1,000,000 people gets
250 per LSOA, not 30 holding 333 people each. (The postcode is a blocking key
for linkage: a postcode crowded tenfold makes a hundred times the pairs.)

Postcodes are in the fictional LK area, so no generated address is anyone's:
district LK<n> is ward n, the sector digit is the LSOA within the ward.
A few postcodes in each LSOA are terminated; they stay in the directory (as
in the ONS Postcode Directory) and old addresses still use them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from jobs.generate.reference import STREETS, WARD_NAMES

LSOAS_PER_WARD = 10
LIVE_POSTCODES_PER_LSOA = 30
TERMINATED_POSTCODES_PER_LSOA = 2
PEOPLE_PER_POSTCODE = 40
TERMINATED_MONTH = "202103"
_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a postcode's unit may use
_UNITS = [a + b for a in _UNIT_LETTERS for b in _UNIT_LETTERS]  # 400 units: a sector's postcodes at most


def live_postcodes_per_lsoa(people: int) -> int:
    """30, or one postcode per 40 people when that is more (a sector holds at most 400 units)."""
    lsoas = len(WARD_NAMES) * LSOAS_PER_WARD
    wanted = -(-people // (lsoas * PEOPLE_PER_POSTCODE))
    return min(len(_UNITS) - TERMINATED_POSTCODES_PER_LSOA, max(LIVE_POSTCODES_PER_LSOA, wanted))


@dataclass(frozen=True)
class Lsoa:
    code: str
    ward_code: str
    ward_name: str
    imd_decile: int
    live: tuple[str, ...]
    terminated: tuple[str, ...]


@dataclass(frozen=True)
class Address:
    line: str
    postcode: str
    lsoa: Lsoa


class Geography:
    def __init__(self, seed: int, people: int = 0) -> None:
        rng = random.Random(f"geography:{seed}")
        live = live_postcodes_per_lsoa(people)
        lsoas = []
        for w, ward_name in enumerate(WARD_NAMES):
            # Deprivation clusters by ward: the old town and harbour are poorer than the wolds.
            ward_centre = 1 + (w * 7) % 10
            for i in range(LSOAS_PER_WARD):
                decile = min(10, max(1, round(rng.gauss(ward_centre, 1.5))))
                units = rng.sample(_UNITS, live + TERMINATED_POSTCODES_PER_LSOA)
                postcodes = [f"LK{w + 1} {i}{u}" for u in units]
                lsoas.append(
                    Lsoa(
                        code=f"E0199{w * LSOAS_PER_WARD + i:04d}",
                        ward_code=f"E0599{w:04d}",
                        ward_name=ward_name,
                        imd_decile=decile,
                        live=tuple(postcodes[:live]),
                        terminated=tuple(postcodes[live:]),
                    )
                )
        self.lsoas: tuple[Lsoa, ...] = tuple(lsoas)
        self.ward_codes = sorted({lsoa.ward_code for lsoa in lsoas})

    def directory_rows(self) -> list[dict[str, object]]:
        """The postcode directory as the ONS Postcode Directory columns (sorted by postcode)."""
        rows = []
        for lsoa in self.lsoas:
            for postcode, doterm in [(p, "") for p in lsoa.live] + [(p, TERMINATED_MONTH) for p in lsoa.terminated]:
                rows.append(
                    {
                        "pcds": postcode,
                        "lsoa21cd": lsoa.code,
                        "wd24cd": lsoa.ward_code,
                        "wd24nm": lsoa.ward_name,
                        "imd_decile": str(lsoa.imd_decile),
                        "doterm": doterm,
                    }
                )
        return sorted(rows, key=lambda r: r["pcds"])

    def address(self, rng: random.Random, terminated: bool = False) -> Address:
        lsoa = rng.choice(self.lsoas)
        postcode = rng.choice(lsoa.terminated if terminated else lsoa.live)
        return Address(f"{rng.randint(1, 180)} {rng.choice(STREETS)}", postcode, lsoa)
