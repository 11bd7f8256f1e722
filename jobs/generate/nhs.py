"""NHS numbers that can never be a real patient's.

The 999 range (999 000 0000 to 999 999 9999) is reserved for testing. It
holds one million nine-digit stems, of which about 909,000 have a Modulus 11
check digit; a larger place continues into 998, 997, ... which are never
issued to patients either (NHS numbers in use begin 3, 4, 6 or 7).
"""

from __future__ import annotations

import numpy as np

_WEIGHTS = np.arange(10, 1, -1)
_STEMS_PER_PREFIX = 1_000_000


def nhs_check_digit(nine_digits: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None where none exists."""
    total = sum(int(d) * w for d, w in zip(nine_digits, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and nhs_check_digit(number[:9]) == int(number[9])


def _valid_numbers_for_prefix(prefix: int, seed: int) -> np.ndarray:
    """Every valid ten-digit number with this three-digit prefix, in a seeded order, as int64."""
    stems = prefix * _STEMS_PER_PREFIX + np.arange(_STEMS_PER_PREFIX, dtype=np.int64)
    digits = (stems[:, None] // (10 ** np.arange(8, -1, -1, dtype=np.int64))) % 10
    check = 11 - (digits @ _WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    valid = check != 10
    numbers = stems[valid] * 10 + check[valid]
    return np.random.default_rng([seed, prefix]).permutation(numbers)


class NhsNumbers:
    """Hands out distinct valid NHS numbers in a fixed order for a seed.

    Memory is bounded by one prefix's table (~7 MB), whatever the place size.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._prefix = 999
        self._table = _valid_numbers_for_prefix(self._prefix, seed)
        self._next = 0

    def take(self) -> str:
        if self._next == len(self._table):
            self._prefix -= 1
            self._table = _valid_numbers_for_prefix(self._prefix, self._seed)
            self._next = 0
        number = int(self._table[self._next])
        self._next += 1
        return f"{number:010d}"


def spaced(number: str) -> str:
    """The 3-3-4 layout people and many systems write."""
    return f"{number[:3]} {number[3:6]} {number[6:]}"
