"""A small synthetic place: a postcode directory, GP registrations and adult
social care services, with the truth about who is who kept beside the lake.

Deterministic for a given seed. Every NHS number is drawn from the 999 test
range and passes Modulus 11, so none can be a real patient's. A handful of
deliberately bad rows exercise quarantine.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from dataclasses import dataclass
from datetime import date, timedelta

from jobs import fs
from jobs.config import Settings
from jobs.contracts import source_contract

log = logging.getLogger(__name__)

FAMILY_NAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Khan",
    "Begum",
    "Ahmed",
    "Hussain",
    "Ali",
    "Singh",
    "Kaur",
    "Nowak",
    "Kowalski",
    "O'Brien",
    "O'Connor",
    "McDonald",
    "Smith-Jones",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Nguyen",
    "Chen",
    "Murphy",
    "Kelly",
    "Lewis",
    "Clarke",
    "Jackson",
    "Wood",
    "Harris",
    "Martin",
    "Cooper",
    "Hughes",
    "Edwards",
    "Turner",
    "Hill",
    "Moore",
    "Ward",
    "Morris",
    "Mitchell",
]
GIVEN_NAMES = {
    "F": [
        "Olivia",
        "Amelia",
        "Isla",
        "Ava",
        "Mia",
        "Grace",
        "Sophia",
        "Lily",
        "Freya",
        "Emily",
        "Margaret",
        "Patricia",
        "Susan",
        "Mary",
        "Joan",
        "Fatima",
        "Aisha",
        "Zoë",
        "Siobhán",
        "Chloé",
        "Priya",
        "Agnieszka",
        "Chidinma",
        "Mei",
        "Anne-Marie",
        "Elizabeth",
        "Sarah",
    ],
    "M": [
        "Oliver",
        "George",
        "Noah",
        "Arthur",
        "Leo",
        "Harry",
        "Oscar",
        "Muhammad",
        "Jack",
        "John",
        "David",
        "Michael",
        "Peter",
        "Robert",
        "James",
        "William",
        "Mohammed",
        "Raj",
        "Seán",
        "Piotr",
        "Chukwuemeka",
        "Wei",
        "Jean-Luc",
        "Thomas",
        "Daniel",
        "Adam",
        "Kwame",
    ],
}
WARD_NAMES = [
    "Riverside",
    "Castle",
    "Harbour",
    "Northfield",
    "St Anne's",
    "Moor End",
    "Kingsway",
    "Old Town",
    "Parkside",
    "Wolds",
]
PRACTICES = [f"Y{n:05d}" for n in range(2101, 2113)]
SERVICE_TYPES = ["HOME_CARE", "RESIDENTIAL", "NURSING", "REABLEMENT", "DAY_CARE", "DIRECT_PAYMENT"]
# Age structure of an English city, roughly: weights for ages 0-99 by band.
AGE_BANDS = [((0, 17), 0.21), ((18, 64), 0.60), ((65, 74), 0.10), ((75, 84), 0.06), ((85, 99), 0.03)]
# Social care use rises steeply with age.
ASC_RATE = {(0, 17): 0.0, (18, 64): 0.02, (65, 74): 0.07, (75, 84): 0.18, (85, 99): 0.40}


@dataclass(frozen=True)
class Person:
    truth_id: str
    nhs_number: str
    family_name: str
    given_name: str
    sex: str
    date_of_birth: date
    postcode: str
    age_band: tuple[int, int]


def nhs_check_digit(nine_digits: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None where none exists."""
    total = sum(int(d) * w for d, w in zip(nine_digits, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _nhs_numbers(rng: random.Random, n: int) -> list[str]:
    numbers: set[str] = set()
    while len(numbers) < n:
        stem = "999" + f"{rng.randrange(10**6):06d}"
        check = nhs_check_digit(stem)
        if check is not None:
            numbers.add(stem + str(check))
    return sorted(numbers)


def _postcode_directory(rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for w, ward_name in enumerate(WARD_NAMES):
        ward_code = f"E05{9000 + w:06d}"
        for lsoa_i in range(4):
            lsoa_code = f"E01{90000 + w * 4 + lsoa_i:06d}"
            imd = str(rng.randint(1, 10))
            for p in range(10):
                # LK is not a real postcode area, so no generated address is anyone's.
                outward = f"LK{w + 1}"
                inward = f"{lsoa_i + 1}{'ABDEFGHJLNPQRSTUWXYZ'[p]}{'ABDEFGHJLNPQRSTUWXYZ'[(p * 7 + lsoa_i) % 20]}"
                terminated = "202103" if p == 9 and lsoa_i == 0 else ""
                rows.append(
                    {
                        "pcds": f"{outward} {inward}",
                        "lsoa21cd": lsoa_code,
                        "wd24cd": ward_code,
                        "wd24nm": ward_name,
                        "imd_decile": imd,
                        "doterm": terminated,
                    }
                )
    return rows


def _people(rng: random.Random, n: int, postcodes: list[str], as_of: date) -> list[Person]:
    numbers = _nhs_numbers(rng, n)
    bands = [b for b, _ in AGE_BANDS]
    weights = [w for _, w in AGE_BANDS]
    people = []
    for i in range(n):
        band = rng.choices(bands, weights)[0]
        age = rng.randint(*band)
        dob = as_of - timedelta(days=age * 365 + rng.randrange(365))
        sex = rng.choices(["F", "M", "U"], [0.5, 0.495, 0.005])[0]
        given = rng.choice(GIVEN_NAMES["F" if sex == "F" else "M"])
        people.append(
            Person(
                truth_id=f"T{i:07d}",
                nhs_number=numbers[i],
                family_name=rng.choice(FAMILY_NAMES),
                given_name=given,
                sex=sex,
                date_of_birth=dob,
                postcode=rng.choice(postcodes),
                age_band=band,
            )
        )
    return people


def _spaced_nhs(number: str) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def _gp_rows(rng: random.Random, people: list[Person], as_of: date) -> tuple[list[dict], list[tuple]]:
    gp_sex = {"M": "1", "F": "2", "U": "9"}
    rows, truth = [], []
    for person in people:
        if rng.random() > 0.97:
            continue  # not registered with a practice in the place
        reg_date = max(person.date_of_birth, as_of - timedelta(days=rng.randrange(3650)))
        record_id = f"R{len(rows):08d}"
        rows.append(
            {
                "registration_id": record_id,
                "nhs_number": _spaced_nhs(person.nhs_number) if rng.random() < 0.5 else person.nhs_number,
                "family_name": person.family_name,
                "given_name": person.given_name,
                "date_of_birth": person.date_of_birth.isoformat(),
                "sex": gp_sex[person.sex],
                "postcode": person.postcode,
                "practice_code": rng.choice(PRACTICES),
                "registration_date": reg_date.isoformat(),
            }
        )
        truth.append(("gp_registrations", record_id, person.truth_id))
    # A transcription error: the digits no longer pass Modulus 11, so the row
    # must survive cleaning with its NHS number nulled.
    rows[3]["nhs_number"] = rows[3]["nhs_number"].replace(" ", "")[:-1] + str(
        (int(rows[3]["nhs_number"].replace(" ", "")[-1]) + 1) % 10
    )
    return rows, truth


def _asc_rows(rng: random.Random, people: list[Person], as_of: date) -> tuple[list[dict], list[tuple]]:
    rows, truth = [], []
    clients = [p for p in people if rng.random() < ASC_RATE[p.age_band]]
    for c, person in enumerate(clients):
        has_nhs = rng.random() < 0.7
        # The council's system keeps names as typed at first contact.
        surname = person.family_name.upper() if rng.random() < 0.3 else person.family_name
        postcode = person.postcode.replace(" ", "") if rng.random() < 0.2 else person.postcode
        for _ in range(rng.choice([1, 1, 2, 3])):
            start = as_of - timedelta(days=rng.randrange(15, 730))
            end = start + timedelta(days=rng.randrange(14, 400))
            record_id = f"S{len(rows):07d}"
            rows.append(
                {
                    "service_id": record_id,
                    "client_id": f"C{c:06d}",
                    "nhs_number": person.nhs_number if has_nhs else "",
                    "surname": surname,
                    "forename": person.given_name,
                    "dob": person.date_of_birth.strftime("%d/%m/%Y"),
                    "gender": person.sex,
                    "postcode": postcode,
                    "service_type": rng.choice(SERVICE_TYPES),
                    "start_date": start.strftime("%d/%m/%Y"),
                    "end_date": end.strftime("%d/%m/%Y") if end < as_of else "",
                }
            )
            truth.append(("asc_services", record_id, person.truth_id))
    # An impossible date: the row must reach quarantine with a reason.
    rows[1]["start_date"] = "31/02/2025"
    return rows, truth


def _to_delimited(rows: list[dict], columns: list[str], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def generate_place(
    settings: Settings, people: int = 2000, seed: int = 20261126, as_of: date = date(2026, 11, 1)
) -> dict[str, int]:
    """Write one delivery of every source into landing/, and the truth beside it.

    Returns the number of data rows written per source.
    """
    rng = random.Random(seed)
    directory = _postcode_directory(rng)
    live = [r["pcds"] for r in directory if not r["doterm"]]
    population = _people(rng, people, live, as_of)
    gp_rows, gp_truth = _gp_rows(rng, population, as_of)
    asc_rows, asc_truth = _asc_rows(rng, population, as_of)
    delivery = as_of.isoformat()

    files = {
        "ons_postcodes": ("onspd.csv", directory),
        "gp_registrations": ("gp_registrations.csv", gp_rows),
        "asc_services": ("asc_services.txt", asc_rows),
    }
    written = {}
    for source, (filename, rows) in files.items():
        contract = source_contract(source)
        text = _to_delimited(rows, contract.column_names, contract.format["delimiter"])
        if source == "asc_services":
            # A ragged row, as a case system export truncated mid-record sends.
            text += "S9999999|C999999|Bloggs|Joe\n"
        fs.write_text(f"{settings.landing}/{source}/{delivery}/{filename}", text)
        written[source] = text.count("\n") - 1

    truth_lines = ["source,record_id,truth_id"] + [",".join(t) for t in gp_truth + asc_truth]
    fs.write_text(settings.path("truth", "records.csv"), "\n".join(truth_lines) + "\n")
    log.info("generated a place of %d people: %s", people, written)
    return written


def landing_is_empty(settings: Settings) -> bool:
    return not fs.list_files(settings.landing)
