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


_ICD10 = r"^[A-Z][0-9]{2}"


def icd10_chapter(raw: Column) -> Column:
    """The ICD-10 chapter (I-XXII) of a diagnosis code; null when the code is not ICD-10 shaped or in no chapter.

    Trusts send 'S72.0', 'S720' and 'S7200' alike: the chapter depends on the first three characters only.
    """
    code = F.regexp_replace(F.upper(F.trim(raw)), r"[.\s]", "")
    category = F.when(code.rlike(_ICD10), F.substring(code, 1, 3))
    chapter = F.lit(None).cast("string")
    for name, first, last in reversed(icd10_chapters()):
        chapter = F.when(category.between(first, last), F.lit(name)).otherwise(chapter)
    return chapter
