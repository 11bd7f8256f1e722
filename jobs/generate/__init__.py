"""A synthetic place with known truth: a city's residents, their care, and
the extracts each organisation sends about them (issue #3).

`generate_place` writes every feed's deliveries into landing/ and the truth
(who every record belongs to, what was damaged and how) into truth/, which
the pipeline never reads. Same seed, byte-identical files.
"""

from __future__ import annotations

from datetime import date

from jobs import fs
from jobs.config import Settings
from jobs.generate.nhs import is_valid_nhs_number, nhs_check_digit
from jobs.generate.noise import NoiseRates
from jobs.generate.place import PlaceSpec, generate

__all__ = [
    "NoiseRates",
    "PlaceSpec",
    "generate_place",
    "is_valid_nhs_number",
    "landing_is_empty",
    "nhs_check_digit",
]


def generate_place(
    settings: Settings,
    people: int = 2000,
    seed: int = 20261126,
    as_of: date = date(2026, 11, 1),
    months: int = 12,
    every: int = 6,
    noise: NoiseRates | None = None,
    opt_out_rate: float = 0.05,
) -> dict[str, int]:
    """Write the place into settings' landing/ and truth/; returns rows written per source."""
    spec = PlaceSpec(people, seed, months, every, as_of, noise or NoiseRates(), opt_out_rate)
    return generate(spec, settings.landing, settings.path("truth"))


def landing_is_empty(settings: Settings) -> bool:
    return not fs.list_files(settings.landing)
