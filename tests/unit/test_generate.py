"""The synthetic place: deterministic, valid NHS numbers, noise at its rates,
and a truth that matches what was delivered. No Spark: files and truth only."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from jobs.config import Settings
from jobs.contracts import source_contract
from jobs.generate import NoiseRates, generate_place, is_valid_nhs_number, nhs_check_digit
from jobs.generate.nhs import NhsNumbers
from jobs.generate.noise import invalid_postcode, transposed_dob, typo, wrong_nhs_number
from jobs.land import file_problem, scan_file

SMALL = 400


def _generate(home: Path, people: int = SMALL, seed: int = 7, **kw) -> Path:
    generate_place(Settings(home=str(home)), people=people, seed=seed, **kw)
    return home


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("place"))


@pytest.fixture(scope="module")
def noisy_place(tmp_path_factory) -> Path:
    """Every rate raised so that a small place has enough damage to measure."""
    loud = {name: 0.2 for name in NoiseRates.__dataclass_fields__}
    return _generate(tmp_path_factory.mktemp("noisy"), people=1500, seed=11, noise=NoiseRates(**loud))


def _truth(home: Path, name: str) -> list[dict[str, str]]:
    with open(home / "truth" / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _file_encodings(home: Path) -> dict[str, str]:
    return {f["file"]: f["encoding"] for f in _truth(home, "files.csv")}


def _lines(home: Path, relative: str, encoding: str) -> list[str]:
    return (home / "landing" / relative).read_bytes().decode(encoding).lstrip("\ufeff").split("\n")


def _rows(home: Path, source: str):
    """Every parseable data row of a source, as dicts, with the damage the truth records for it."""
    contract = source_contract(source)
    encodings = _file_encodings(home)
    for path in sorted((home / "landing" / source).rglob("*.*")):
        relative = str(path.relative_to(home / "landing"))
        lines = [line for line in _lines(home, relative, encodings.get(relative, "utf-8")) if line]
        if contract.format["type"] == "jsonl":
            for line in lines:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a ragged (truncated) row
        else:
            reader = csv.reader(lines, delimiter=contract.format["delimiter"])
            header = next(reader, None)
            for values in reader:
                if len(values) == len(header):
                    yield dict(zip(header, values, strict=True))


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path, place):
    again = _generate(tmp_path / "again")
    assert _digests(place) == _digests(again)
    other = _generate(tmp_path / "other", seed=8)
    assert _digests(place) != _digests(other)


def test_nhs_check_digit_and_the_999_range():
    # 943 476 5919 is the NHS's own published example of a valid number.
    assert nhs_check_digit("943476591") == 9
    assert is_valid_nhs_number("9434765919") and not is_valid_nhs_number("9434765918")
    assert nhs_check_digit("999000001") is None or nhs_check_digit("999000001") < 10
    numbers = NhsNumbers(seed=1)
    drawn = [numbers.take() for _ in range(5000)]
    assert len(set(drawn)) == 5000
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in drawn)


def test_every_delivered_nhs_number_is_valid_and_in_the_test_range_unless_deliberately_wrong(place):
    wrong = {(d["source"], d["record_id"]) for d in _truth(place, "damage.csv") if d["kind"] == "nhs_wrong"}
    seen = 0
    for source in ("gp_registrations", "apc_episodes", "ae_attendances", "community_contacts", "asc_services"):
        key = source_contract(source).record_key[0]
        for row in _rows(place, source):
            number = (row.get("nhs_number") or "").replace(" ", "")
            if not number or (source, row[key]) in wrong:
                continue
            seen += 1
            assert number.startswith("999") and is_valid_nhs_number(number), source
    assert seen > SMALL


def test_every_truth_entry_points_at_the_delivered_line_holding_its_record(place):
    encodings = _file_encodings(place)
    cache: dict[str, list[str]] = {}
    for table in ("records.csv", "resends.csv", "damage.csv"):
        entries = _truth(place, table)
        assert entries, table
        for entry in entries:
            relative = entry["file"]
            if relative not in cache:
                cache[relative] = _lines(place, relative, encodings.get(relative, "utf-8"))
            assert entry["record_id"] in cache[relative][int(entry["line"]) - 1], (
                table,
                entry["kind"] if "kind" in entry else "",
            )
    records = _truth(place, "records.csv")
    assert len({(r["source"], r["record_id"]) for r in records}) == len(records)
    people = {p["truth_id"] for p in _truth(place, "people.csv")}
    assert {r["truth_id"] for r in records} <= people
    assert len(people) >= SMALL


def test_each_noise_rate_is_honoured_within_binomial_tolerance(noisy_place):
    rates = _truth(noisy_place, "noise_rates.csv")
    measured = 0
    for r in rates:
        n, k, p = int(r["eligible"]), int(r["applied"]), float(r["setting"])
        if n < 100:
            continue
        measured += 1
        # Four standard deviations: a rate wrongly implemented is far outside this; chance is not.
        assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1, (r["kind"], r["organisation"], n, k, p)
    assert measured >= 15

    # Every damage counted is written down, row by row, in the truth.
    applied = Counter()
    for r in rates:
        applied[r["kind"]] += int(r["applied"])
    written = Counter(d["kind"] for d in _truth(noisy_place, "damage.csv"))
    corrections = sum(1 for r in _truth(noisy_place, "resends.csv") if r["reason"] == "correction")
    assert corrections == applied.pop("correction")
    assert written == {k: v for k, v in applied.items() if v}


def _delivered_row(home: Path, source: str, relative: str, line: int, encoding: str) -> dict[str, str]:
    contract = source_contract(source)
    lines = _lines(home, relative, encoding)
    if contract.format["type"] == "jsonl":
        return json.loads(lines[line - 1])
    header, values = csv.reader([lines[0], lines[line - 1]], delimiter=contract.format["delimiter"])
    return dict(zip(header, values, strict=True))


def test_recorded_damage_is_really_in_the_delivered_rows(noisy_place):
    encodings = _file_encodings(noisy_place)
    checked = Counter()
    damage = _truth(noisy_place, "damage.csv")
    ragged = {(d["source"], d["record_id"]) for d in damage if d["kind"] == "ragged_row"}
    for d in damage:
        if (d["source"], d["record_id"]) in ragged or d["kind"] not in (
            "nhs_missing",
            "impossible_date",
            "out_of_range_code",
            "dob_transposed",
        ):
            continue
        row = _delivered_row(noisy_place, d["source"], d["file"], int(d["line"]), encodings.get(d["file"], "utf-8"))
        if d["kind"] == "nhs_missing":
            assert not row.get(d["field"])
        elif d["kind"] == "impossible_date":
            assert "30" in row[d["field"]] and "02" in row[d["field"]]
        elif d["kind"] == "out_of_range_code":
            assert row[d["field"]] not in source_contract(d["source"]).column(d["field"]).allowed
        else:
            assert int(row[d["field"]].replace("/", "-").split("-")[1]) <= 12
        checked[d["kind"]] += 1
    assert set(checked) == {"nhs_missing", "impossible_date", "out_of_range_code", "dob_transposed"}


def test_damaged_files_meet_the_landing_rule_the_truth_expects(place):
    files = _truth(place, "files.csv")
    kinds = {f["damage"] for f in files}
    assert {"bom", "latin1", "header_order", "empty", "sent_twice"} <= kinds
    digests = {}
    for f in files:
        path = str(place / "landing" / f["file"])
        scan = scan_file(path)
        problem = file_problem(scan, source_contract(f["source"]))
        if f["expected"].startswith("rejected:"):
            assert problem is not None and problem[0] == f["expected"].split(":", 1)[1], f["file"]
        else:
            assert problem is None, f["file"]
        if f["expected"] == "duplicate":
            assert scan.sha256 in digests.values()
        digests[f["file"]] = scan.sha256
    bom = next(f for f in files if f["damage"] == "bom")
    assert (place / "landing" / bom["file"]).read_bytes().startswith(b"\xef\xbb\xbf")


def test_noise_helpers_on_awkward_values():
    import random
    from datetime import date

    rng = random.Random(1)
    assert transposed_dob(date(1950, 3, 7)) == date(1950, 7, 3)
    assert transposed_dob(date(1950, 3, 13)) is None and transposed_dob(date(1950, 4, 4)) is None
    assert typo(rng, "O'Brien") != "O'Brien"
    assert wrong_nhs_number(rng, "9990000026") != "9990000026"
    from jobs import standardise  # noqa: F401 - the same regex the pipeline uses, checked below in Python

    pattern = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$"
    import re

    for _ in range(50):
        bad = invalid_postcode(rng, "LK1 2AB").replace(" ", "")
        assert not re.match(pattern, bad), bad
    with pytest.raises(ValueError, match="unknown noise kind"):
        NoiseRates.parse(["typos=0.1"])
    assert NoiseRates.parse(["typo=0.5"]).typo == 0.5


def test_the_postcode_directory_meets_its_contract_patterns(place):
    import re

    contract = source_contract("ons_postcodes")
    with open(next((place / "landing" / "ons_postcodes").rglob("*.csv")), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    patterns = {c.name: re.compile(c.pattern) for c in contract.columns if c.pattern}
    for row in rows:
        for column, pattern in patterns.items():
            assert pattern.match(row[column]), column
    assert len({r["lsoa21cd"] for r in rows}) == 100 and len({r["wd24cd"] for r in rows}) == 10
    assert 0 < sum(1 for r in rows if r["doterm"]) < len(rows) / 10
    assert len({r["imd_decile"] for r in rows}) >= 8


def test_a_large_place_has_a_postcode_for_about_every_40_people_and_a_small_one_30_per_lsoa():
    import re

    from jobs.generate.geography import Geography

    pattern = re.compile(source_contract("ons_postcodes").column("pcds").pattern)
    for people, live in ((2_000, 30), (100_000, 30), (1_000_000, 250)):
        rows = Geography(7, people).directory_rows()
        terminated = [r for r in rows if r["doterm"]]
        assert (len(rows), len(terminated)) == (100 * (live + 2), 100 * 2), people
        assert len({r["pcds"] for r in rows}) == len(rows) and all(pattern.match(r["pcds"]) for r in rows)
    # Up to 120,000 people a place has the postcodes it had before size counted (digest taken then).
    small = json.dumps(Geography(7, 100_000).directory_rows(), sort_keys=True).encode()
    assert hashlib.sha256(small).hexdigest() == "012a1672b88309d65809b3a72c0e63706281fe0972fea8882ba4a06c31bc8185"


def _record_owners(home: Path, source: str) -> dict[str, str]:
    return {r["record_id"]: r["truth_id"] for r in _truth(home, "records.csv") if r["source"] == source}


def _uk_date(text: str):
    from datetime import datetime

    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None  # a deliberately impossible date


def _people_with_bad_rows(home: Path, sources: tuple[str, ...]) -> set[str]:
    owners = {(r["source"], r["record_id"]): r["truth_id"] for r in _truth(home, "records.csv")}
    bad = {"impossible_date", "out_of_range_code", "ragged_row"}
    return {
        owners[(d["source"], d["record_id"])]
        for d in _truth(home, "damage.csv")
        if d["source"] in sources and d["kind"] in bad
    }


def test_every_social_care_service_follows_a_request_and_an_assessment_of_its_client(place):
    events, services = _record_owners(place, "asc_events"), _record_owners(place, "asc_services")
    damaged = _people_with_bad_rows(place, ("asc_events", "asc_services"))
    first: dict[tuple[str, str], object] = {}
    reviews = []
    for row in _rows(place, "asc_events"):
        day = _uk_date(row["event_date"])
        if day is None:
            continue
        key = (events[row["event_id"]], row["event_type"])
        first[key] = min(first.get(key, day), day)
        if row["event_type"] == "REVIEW":
            reviews.append((events[row["event_id"]], day))
    checked = 0
    long_term_start: dict[str, object] = {}
    for row in _rows(place, "asc_services"):
        person, start = services[row["service_id"]], _uk_date(row["start_date"])
        if person in damaged or start is None:
            continue
        assert first[(person, "REQUEST")] <= first[(person, "ASSESSMENT")] <= start
        if row["service_type"] != "REABLEMENT":
            long_term_start[person] = min(long_term_start.get(person, start), start)
        checked += 1
    assert checked >= 10
    # Reviews follow long-term support; reablement is short-term and never reviewed.
    followed = [(p, d) for p, d in reviews if p not in damaged]
    assert followed and all(p in long_term_start and long_term_start[p] <= d for p, d in followed)
    assert {r["event_outcome"] for r in _rows(place, "asc_events")} >= {
        "NO_FURTHER_ACTION",
        "ASSESSMENT",
        "LONG_TERM_SUPPORT",
        "SHORT_TERM_SUPPORT",
        "NO_CHANGE",
    }


def test_social_care_events_carry_the_council_identity_noise_rates(noisy_place):
    """asc_events is a council feed: NHS numbers go missing at the council rate, as in asc_services."""
    records, damage = _truth(noisy_place, "records.csv"), _truth(noisy_place, "damage.csv")
    setting = 0.2
    for source in ("asc_events", "asc_services"):
        twins = sum(1 for d in damage if d["source"] == source and d["kind"] == "duplicate")
        n = sum(1 for r in records if r["source"] == source) - twins
        k = sum(1 for d in damage if d["source"] == source and d["kind"] == "nhs_missing")
        assert n >= 50, source
        assert abs(k - n * setting) <= 4 * math.sqrt(n * setting * (1 - setting)) + 1, (source, n, k)


def test_gp_deregistrations_meet_the_contract_and_the_lives_in_the_truth(place):
    from datetime import date

    contract = source_contract("gp_registrations")
    reasons = set(contract.column("deregistration_reason").allowed)
    owners = _record_owners(place, "gp_registrations")
    people = {p["truth_id"]: p for p in _truth(place, "people.csv")}
    damage = _truth(place, "damage.csv")
    out_of_range = {d["record_id"] for d in damage if d["kind"] == "out_of_range_code"}
    twins = {
        d["record_id"]
        for d in damage
        if d["source"] == "gp_registrations" and d["kind"] in ("registered_twice", "duplicate")
    }
    latest = {row["registration_id"]: row for row in _rows(place, "gp_registrations")}
    seen = Counter()
    for rid, row in latest.items():
        ended, reason = row["deregistration_date"], row["deregistration_reason"]
        assert bool(ended) == bool(reason), "a deregistration has both a date and a reason"
        if not ended:
            continue
        if rid not in out_of_range:
            assert reason in reasons
        # Contract: ISO dates (yyyy-MM-dd), an end never before the start.
        assert date.fromisoformat(ended) >= date.fromisoformat(row["registration_date"])
        person = people[owners[rid]]
        if reason == "death":
            assert person["death_month"] and ended[:7] >= person["death_month"]
        elif reason == "moved_away":
            assert person["left_month"] and ended[:7] >= person["left_month"]
        seen[reason] += 1
    assert seen["death"] and seen["moved_away"] and seen["transferred"], seen
    # Registering at a new practice ends the old registration: at most one open one per person.
    open_registrations = Counter(
        owners[rid] for rid, row in latest.items() if not row["deregistration_date"] and rid not in twins
    )
    assert max(open_registrations.values()) == 1


def test_the_opt_out_list_names_a_small_share_of_residents_and_matches_the_truth(place):
    opted = _truth(place, "opt_outs.csv")
    people = {p["truth_id"] for p in _truth(place, "people.csv")}
    [listed] = [f for f in _truth(place, "files.csv") if f["source"] == "opt_outs"]
    assert listed["expected"] == "landed"
    with open(place / "landing" / listed["file"], encoding="utf-8", newline="") as handle:
        delivered = [row["nhs_number"] for row in csv.DictReader(handle)]
    assert delivered == [o["nhs_number"] for o in opted] and int(listed["rows"]) == len(delivered)
    assert all(is_valid_nhs_number(n) for n in delivered)
    assert {o["truth_id"] for o in opted} <= people
    # 5% of residents, within four binomial standard deviations.
    n = len(people)
    assert abs(len(opted) - 0.05 * n) <= 4 * math.sqrt(n * 0.05 * 0.95), (len(opted), n)


def test_names_have_a_long_tail_so_namesakes_are_as_rare_as_in_a_real_city():
    """Linkage blocks on names: a place where most people share a few names is not a city to benchmark on."""
    import random
    from datetime import date

    from jobs.generate.geography import Geography
    from jobs.generate.people import PeopleFactory

    factory = PeopleFactory(Geography(7, 30_000), NhsNumbers(7), date(2024, 1, 1), date(2026, 1, 1))
    rng, people = random.Random(7), []
    while len(people) < 30_000:
        people.extend(factory.household(rng, len(people), 6).members)
    family = Counter(p.family_name for p in people)
    # England and Wales: Smith is about 1.3% of people, and a city holds thousands of surnames.
    assert family.most_common(1)[0][1] < 0.015 * len(people)
    assert len(family) > 1_500
    assert max(Counter(p.given_name for p in people).values()) < 0.03 * len(people)
    namesakes = Counter((p.family_name, p.given_name, p.date_of_birth.year) for p in people)
    assert max(namesakes.values()) <= 4
    # The awkward spellings the cleaning must keep still turn up.
    assert any("'" in name for name in family) and any("-" in name for name in family)
    assert any(not name.isascii() for name in family)
