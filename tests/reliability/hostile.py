"""A corpus of hostile extracts, written into a generated place's landing/ beside its good deliveries.

Each kind is one file (or link) with the outcome landing must give it: the
manifest status, the file rule (None when it lands cleanly) and, for a file
that lands with bad rows, the row rule and the physical lines quarantined.
Values are made up here (NHS numbers from the 999 test range), never taken
from a real extract.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from jobs.contracts import source_contract

DELIVERY = "2026-10-15"  # after the full extract, before the increment and the run date


@dataclass(frozen=True)
class Kind:
    name: str
    path: str  # under landing/
    status: str  # landed | duplicate | rejected
    rule: str | None = None  # the file's rule in the manifest
    row_rule: str | None = None  # rule of its quarantined rows
    bad_lines: tuple[int, ...] = ()  # physical lines quarantined
    rows_landed: int | None = None
    values: dict[str, str] = field(default_factory=dict)  # column -> value bronze must hold exactly


FORMULA = '=HYPERLINK("http://example.invalid/x","click me")'
SQL = "Robert'); DROP TABLE gold.person;--"
CONFUSABLE = "Аnnа"  # Cyrillic А and а: looks like Anna, is not
FULLWIDTH_NHS = "９９９９９９９９９９"


def _gp_row(n: int, **values: str) -> list[str]:
    row = {
        "registration_id": f"RH{n:07d}",
        "nhs_number": "",
        "family_name": "Hostile",
        "given_name": f"Case{n}",
        "date_of_birth": "1970-01-01",
        "sex": "1",
        "postcode": "LK2 9QD",
        "practice_code": "Y90118",
        "registration_date": "2024-01-01",
        "deregistration_date": "",
        "deregistration_reason": "",
    }
    row.update(values)
    return [row[c] for c in source_contract("gp_registrations").column_names]


def _csv(rows: list[list[str]], newline: str = "\n") -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(ch in v for ch in ',"\n\r') else v

    return "".join(",".join(cell(v) for v in r) + newline for r in rows)


def _housing(n: int, **values) -> dict:
    names = source_contract("housing_cases").column_names
    record = dict.fromkeys(names)
    record.update(case_id=f"HH{n:07d}", surname="Hostile", forename=f"Case{n}", dob="01/01/1970")
    record.update(approach_date="01/03/2026", postcode="LK2 9QD", duty_type="PREVENTION")
    record.update(values)
    return record


def write_corpus(home: Path, outside: Path) -> list[Kind]:
    """Write every hostile kind under home/landing; outside is a folder beyond landing/ for the links."""
    landing = home / "landing"
    gp = source_contract("gp_registrations").column_names
    header = [gp]
    kinds: list[Kind] = []

    def put(kind: Kind, data: bytes) -> None:
        target = landing / kind.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        kinds.append(kind)

    d = f"gp_registrations/{DELIVERY}"
    good = _gp_row(1)
    put(
        Kind("wrong encoding", f"{d}/latin1.csv", "rejected", "file.encoding"),
        _csv([*header, good, _gp_row(2, given_name="Zoë")]).encode("latin-1"),
    )
    put(
        Kind("byte order mark", f"{d}/bom.csv", "landed", "file.bom", rows_landed=1),
        codecs.BOM_UTF8 + _csv([*header, _gp_row(3)]).encode(),
    )
    put(Kind("reordered columns", f"{d}/reordered.csv", "rejected", "file.header_order"), _csv([gp[::-1]]).encode())
    put(
        Kind("missing column", f"{d}/missing.csv", "rejected", "file.missing_column"),
        _csv([gp[:-1], _gp_row(4)[:-1]]).encode(),
    )
    put(
        Kind("extra column", f"{d}/extra.csv", "rejected", "file.extra_column"),
        _csv([[*gp, "notes"], [*_gp_row(5), "x"]]).encode(),
    )
    put(
        Kind("ragged row", f"{d}/ragged.csv", "landed", None, "row.ragged", (3,), rows_landed=1),
        _csv([*header, _gp_row(6), _gp_row(7)[:4]]).encode(),
    )
    quoted = 'O\'Brien "Jr"\nSmith, of Leeds'
    put(
        Kind(
            "embedded newline and quotes",
            f"{d}/quoted.csv",
            "landed",
            rows_landed=2,
            values={"family_name": quoted},
        ),
        _csv([*header, _gp_row(8, family_name=quoted), _gp_row(9)]).encode(),
    )
    put(
        Kind("unterminated quote", f"{d}/unterminated.csv", "landed", None, "row.unparseable", (3,), rows_landed=1),
        (_csv([*header, _gp_row(10)]) + 'RH0000011,,"Never closed,Ann\n').encode(),
    )
    put(Kind("empty file", f"{d}/empty.csv", "rejected", "file.not_empty"), b"")
    put(Kind("header only", f"{d}/header_only.csv", "rejected", "file.no_rows"), _csv(header).encode())
    whole = gzip.compress(_csv([*header, *(_gp_row(20 + i) for i in range(200))]).encode())
    put(Kind("truncated gzip", f"{d}/truncated.csv.gz", "rejected", "file.truncated"), whole[: len(whole) // 2])
    put(
        Kind("gz that is not gzip", f"{d}/not_gzip.csv.gz", "rejected", "file.compression"),
        _csv([*header, _gp_row(12)]).encode(),
    )
    original = sorted((landing / "gp_registrations").glob("2025-*/*.csv"))[0]
    put(Kind("duplicate file", f"{d}/resent_copy.csv", "duplicate", "file.duplicate"), original.read_bytes())
    put(
        Kind("unknown source folder", f"pharmacy_claims/{DELIVERY}/claims.csv", "rejected", "file.unknown_source"),
        b"claim_id,nhs_number\nC1,9990000018\n",
    )
    put(Kind("file loose in landing", "stray_extract.csv", "rejected", "file.unknown_source"), _csv(header).encode())
    put(
        Kind("no delivery date", "gp_registrations/latest/extract.csv", "rejected", "file.no_delivery_date"),
        _csv([*header, _gp_row(13)]).encode(),
    )
    big = "A" * (10 * 1024 * 1024)
    put(
        Kind("10 MB single field", f"{d}/big_field.csv", "landed", None, "row.field_too_large", (3,), rows_landed=2),
        _csv([*header, _gp_row(14), _gp_row(15, given_name=big), _gp_row(16)]).encode(),
    )
    junk = random.Random(9).randbytes(64 * 1024)
    put(Kind("binary junk", f"{d}/junk.csv", "rejected", "file.encoding"), junk)
    put(
        Kind("NUL bytes", f"{d}/nul.csv", "landed", rows_landed=1, values={"given_name": "Ann\x00e"}),
        _csv([*header, _gp_row(17, given_name="Ann\x00e")]).encode(),
    )
    put(
        Kind("spreadsheet formula cells", f"{d}/formula.csv", "landed", rows_landed=1, values={"family_name": FORMULA}),
        _csv(
            [*header, _gp_row(18, family_name=FORMULA, given_name="@SUM(1+1)", practice_code="+cmd|' /C calc'!A0")]
        ).encode(),
    )
    put(
        Kind("SQL-looking strings", f"{d}/sql.csv", "landed", rows_landed=1, values={"family_name": SQL}),
        _csv([*header, _gp_row(19, family_name=SQL, registration_id="RH0000019' OR '1'='1")]).encode(),
    )
    put(
        Kind("confusable header", f"{d}/confusable_header.csv", "rejected", "file.header"),
        _csv([[c.replace("family_name", "fаmily_name") for c in gp], _gp_row(40)]).encode(),
    )
    put(
        Kind(
            "confusable values",
            f"{d}/confusable_values.csv",
            "landed",
            rows_landed=1,
            values={"given_name": CONFUSABLE, "nhs_number": FULLWIDTH_NHS},
        ),
        _csv([*header, _gp_row(41, given_name=CONFUSABLE, nhs_number=FULLWIDTH_NHS)]).encode(),
    )
    wide = [f"c{i}" for i in range(100_000)]
    put(
        Kind("header of 100,000 columns", f"{d}/wide.csv", "rejected", "file.header"),
        _csv([wide, ["1"] * len(wide)]).encode(),
    )
    put(
        Kind("CRLF line endings", f"{d}/crlf.csv", "landed", rows_landed=2),
        _csv([*header, _gp_row(42), _gp_row(43)], newline="\r\n").encode(),
    )
    put(
        Kind("blank line inside", f"{d}/blank.csv", "landed", None, "row.blank_line", (3,), rows_landed=2),
        (_csv([*header, _gp_row(44)]) + "\n" + _csv([_gp_row(45)])).encode(),
    )

    h = f"housing_cases/{DELIVERY}"
    deep = '{"case_id": "HH0000002", "surname": ' + "[" * 100_000 + "]" * 100_000 + "}"
    put(
        Kind("deeply nested JSON", f"{h}/deep.jsonl", "landed", None, "row.unparseable", (2,), rows_landed=1),
        (json.dumps(_housing(1)) + "\n" + deep + "\n").encode(),
    )
    put(
        Kind("JSON that is not an object", f"{h}/not_object.jsonl", "landed", None, "row.unparseable", (2, 3), 1),
        (json.dumps(_housing(3)) + "\n[1, 2, 3]\n{not json\n").encode(),
    )
    put(
        Kind("JSON with unexpected keys", f"{h}/extra_key.jsonl", "landed", None, "row.unexpected_keys", (1,), 1),
        (json.dumps({**_housing(4), "favourite_colour": "red"}) + "\n" + json.dumps(_housing(5)) + "\n").encode(),
    )

    outside.mkdir(parents=True, exist_ok=True)
    (outside / "elsewhere.csv").write_bytes(_csv([*header, _gp_row(50)]).encode())
    link = landing / d / "linked.csv"
    os.symlink(outside / "elsewhere.csv", link)
    kinds.append(Kind("symlink to a file outside landing", f"{d}/linked.csv", "rejected", "file.symlink"))
    os.symlink(outside, landing / "gp_registrations" / "2026-10-16")
    kinds.append(
        Kind("symlinked delivery folder", "gp_registrations/2026-10-16/elsewhere.csv", "rejected", "file.symlink")
    )
    return kinds
