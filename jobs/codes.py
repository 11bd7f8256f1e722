"""National code lists (schemas/codes/*.yaml) as Column lookups.

Reference data lives in the repository, beside the contracts, so a change to
a code list is reviewed like any other change and rebuilt with
`placelake rebuild`. A code no list knows is kept and flagged by the caller,
never dropped: these functions only say what a code means, or null.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml
from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.config import REPO_ROOT

CODES_DIR = REPO_ROOT / "schemas" / "codes"


@dataclass(frozen=True)
class Entry:
    code: str
    value: str
    description: str
    group: str | None = None
    not_known: bool = False


@dataclass(frozen=True)
class CodeList:
    name: str
    systems: dict[str, dict[str, Entry]]

    def system(self, name: str) -> dict[str, Entry]:
        if name not in self.systems:
            raise KeyError(f"code list {self.name!r} has no system {name!r} (has {sorted(self.systems)})")
        return self.systems[name]


@cache
def code_list(name: str) -> CodeList:
    path = CODES_DIR / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    systems = {
        system: {
            str(code): Entry(
                code=str(code),
                value=str(entry["value"]),
                description=entry["description"],
                group=entry.get("group"),
                not_known=bool(entry.get("not_known", False)),
            )
            for code, entry in codes.items()
        }
        for system, codes in doc["systems"].items()
    }
    return CodeList(name=doc["name"], systems=systems)


def normalised_code(raw: Column) -> Column:
    """How a code is looked up: trimmed, upper case, null when blank."""
    code = F.upper(F.trim(raw))
    return F.when(code != "", code)


def _map(mapping: dict[str, str | None]) -> Column:
    pairs = [F.lit(v) for pair in mapping.items() for v in pair]
    return F.create_map(*pairs)


def lookup(raw: Column, list_name: str, system: str, attribute: str = "value") -> Column:
    """The entry's value (or group, description) for a delivered code; null when blank or unknown."""
    entries = code_list(list_name).system(system)
    return _map({code: getattr(e, attribute) for code, e in entries.items()})[normalised_code(raw)]


def known_codes(list_name: str) -> list[str]:
    """Every code the list holds, in any of its systems."""
    return sorted({code for entries in code_list(list_name).systems.values() for code in entries})


def is_unknown(raw: Column, list_name: str, system: str) -> Column:
    """True when a code was delivered but the list does not hold it (never null)."""
    known = list(code_list(list_name).system(system))
    code = normalised_code(raw)
    return F.coalesce(code.isNotNull() & ~code.isin(known), F.lit(False))


def is_not_known(raw: Column, list_name: str, system: str) -> Column:
    """True when the delivered code is the list's own 'not known' (a default, not an error)."""
    codes = [c for c, e in code_list(list_name).system(system).items() if e.not_known]
    return F.coalesce(normalised_code(raw).isin(codes), F.lit(False))


@cache
def icd10_chapters() -> tuple[tuple[str, str, str], ...]:
    doc = yaml.safe_load((CODES_DIR / "icd10_chapter.yaml").read_text(encoding="utf-8"))
    return tuple((c["chapter"], c["first"], c["last"]) for c in doc["chapters"])


@cache
def _icd10_chapter_of_category() -> tuple[str | None, ...]:
    """The chapter of every category A00..Z99, indexed (letter - 'A') * 100 + number; None in no chapter."""
    table: list[str | None] = [None] * 2600
    for name, first, last in icd10_chapters():
        for index in range(_category_index(first), _category_index(last) + 1):
            table[index] = name
    return tuple(table)


def _category_index(category: str) -> int:
    return (ord(category[0]) - ord("A")) * 100 + int(category[1:3])


def icd10_chapter(raw: Column) -> Column:
    """The ICD-10 chapter (I-XXII) of a diagnosis code; null when the code is not ICD-10 shaped or in no chapter.

    Trusts send 'S72.0', 'S720' and 'S7200' alike: the chapter depends on the first three characters only.
    One index into a constant array of the 2,600 categories: a chain of 22 range tests repeats the
    code's expression 44 times, outgrows Java's 64 KB method limit and loses whole-stage codegen.
    """
    category = F.substring(F.regexp_replace(F.upper(F.trim(raw)), r"[.\s]", ""), 1, 3)
    index = (F.ascii(category) - ord("A")) * 100 + F.substring(category, 2, 2).cast("int")
    # One literal split into the array (Spark folds it to a constant): building it element by
    # element costs 5,200 calls from Python to the JVM for each plan that uses it.
    chapters = F.split(F.lit(",".join(c or "" for c in _icd10_chapter_of_category())), ",")
    return F.when(category.rlike(r"^[A-Z][0-9]{2}$"), F.nullif(chapters[index], F.lit("")))
