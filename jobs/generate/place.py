"""Generate a synthetic place: every feed's deliveries into landing/, and the
truth about them into truth/.

Households are made and simulated one at a time and their records streamed
straight into the open delivery files, so memory stays flat however large the
place. Every household draws from its own random stream (seeded from the
place's seed and its index), so the same seed gives byte-identical files.
"""

from __future__ import annotations

import bisect
import logging
import random
from dataclasses import dataclass, field
from datetime import date

from jobs.contracts import source_contract
from jobs.generate import noise as nz
from jobs.generate.care import CareModel, Record
from jobs.generate.feeds import Feed, feeds
from jobs.generate.geography import Geography
from jobs.generate.nhs import NhsNumbers, is_valid_nhs_number, spaced
from jobs.generate.noise import Damage, Noise, NoiseRates
from jobs.generate.people import Household, PeopleFactory
from jobs.generate.reference import NICKNAMES, VARIANTS
from jobs.generate.writer import DeliveredFile, TextSink, TruthTable, copy_file, spark_to_strftime

log = logging.getLogger(__name__)

ID_PREFIX = {
    "ae_attendances": "A",
    "apc_episodes": "E",
    "asc_events": "Q",
    "asc_services": "S",
    "community_contacts": "K",
    "gp_registrations": "R",
    "housing_cases": "H",
}
SPLIT_ROWS = 25  # rows diverted into a small damaged side file


@dataclass(frozen=True)
class PlaceSpec:
    people: int = 2000
    seed: int = 20261126
    months: int = 12
    every: int = 6  # months between deliveries after the initial full extract
    as_of: date = date(2026, 11, 1)
    noise: NoiseRates = field(default_factory=NoiseRates)
    # Share of residents on the national data opt-out list (about 5% in England in 2024).
    opt_out_rate: float = 0.05

    @property
    def period_start(self) -> date:
        return _add_months(self.as_of, -self.months)

    @property
    def history_start(self) -> date:
        """The initial full extract reaches back a year before the period."""
        return _add_months(self.period_start, -12)

    def deliveries(self) -> list[date]:
        dates = [_add_months(self.period_start, k) for k in range(0, self.months + 1, max(1, self.every))]
        if dates[-1] != self.as_of:
            dates.append(self.as_of)
        return dates


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return day.replace(year=total // 12, month=total % 12 + 1, day=1)


@dataclass(frozen=True)
class FileDamage:
    kind: str  # bom | latin1 | header_order | empty | sent_twice
    source: str
    delivery: int
    expected: str  # the landing outcome: landed | rejected:<rule> | duplicate


def file_damage_plan(n_deliveries: int) -> list[FileDamage]:
    """Which delivered files are damaged, and how: the first increment carries most of it."""
    first_increment = 1 if n_deliveries > 1 else 0
    last = n_deliveries - 1
    plan = [
        FileDamage("bom", "gp_registrations", first_increment, "landed"),
        FileDamage("latin1", "asc_services", first_increment, "rejected:file.encoding"),
        FileDamage("header_order", "community_contacts", first_increment, "rejected:file.header_order"),
        FileDamage("empty", "housing_cases", last, "rejected:file.not_empty"),
    ]
    if n_deliveries > 1:
        plan.append(FileDamage("sent_twice", "apc_episodes", last - 1, "duplicate"))
    return plan


class PlaceWriter:
    """Presents records as each feed would, damages them, and writes files and truth."""

    def __init__(self, spec: PlaceSpec, landing: str, truth: str) -> None:
        self.spec = spec
        self.landing = landing
        self.deliveries = spec.deliveries()
        self.feeds: dict[str, Feed] = {f.name: f for f in feeds()}
        self.noise = Noise(spec.noise)
        self.files: dict[tuple[str, int, str], DeliveredFile] = {}
        self.plan = file_damage_plan(len(self.deliveries))
        self._split = {(d.source, d.delivery): d for d in self.plan if d.kind in ("latin1", "header_order")}
        self._date_format = {n: spark_to_strftime(f.contract.format["date_format"]) for n, f in self.feeds.items()}
        self._iso = {n for n, f in self._date_format.items() if f == "%Y-%m-%d"}
        self.ids: dict[str, int] = dict.fromkeys(self.feeds, 0)
        self.nhs: NhsNumbers | None = None
        self.records = TruthTable(
            f"{truth}/records.csv", ["source", "record_id", "truth_id", "delivery", "file", "line"]
        )
        self.resends = TruthTable(f"{truth}/resends.csv", ["source", "record_id", "delivery", "file", "line", "reason"])
        self.damage = TruthTable(
            f"{truth}/damage.csv", ["source", "record_id", "delivery", "file", "line", "kind", "field", "expected"]
        )
        self.truth_dir = truth

    # --- ids and dates --------------------------------------------------------
    def next_id(self, source: str) -> str:
        self.ids[source] += 1
        return f"{ID_PREFIX[source]}{self.ids[source]:08d}"

    def delivery_index(self, day: date) -> int:
        return min(bisect.bisect_left(self.deliveries, day), len(self.deliveries) - 1)

    def _text(self, source: str, value) -> str:
        if value is None:
            return ""
        if isinstance(value, date):
            return value.isoformat() if source in self._iso else value.strftime(self._date_format[source])
        return str(value)

    # --- files ----------------------------------------------------------------
    def _file(self, source: str, k: int) -> DeliveredFile:
        variant = "main"
        split = self._split.get((source, k))
        if split is not None:
            side = self.files.get((source, k, split.kind))
            main = self.files.get((source, k, "main"))
            routed = (side.rows if side else 0) + (main.rows if main else 0)
            # One row in four goes to the side file, until it holds SPLIT_ROWS.
            if (side is None or side.rows < SPLIT_ROWS) and routed % 4 == 0:
                variant = split.kind
        key = (source, k, variant)
        if key not in self.files:
            self.files[key] = self._open(source, k, variant)
        return self.files[key]

    def _open(self, source: str, k: int, variant: str) -> DeliveredFile:
        contract = source_contract(source)
        day = self.deliveries[k]
        ext = (
            "jsonl"
            if contract.format.get("type") == "jsonl"
            else ("txt" if contract.format["delimiter"] == "|" else "csv")
        )
        suffix = {"main": "", "latin1": "_care_homes", "header_order": "_extra"}[variant]
        relative = f"{source}/{day.isoformat()}/{source}_{day:%Y%m%d}{suffix}.{ext}"
        bom = any(d.kind == "bom" and d.source == source and d.delivery == k for d in self.plan) and variant == "main"
        columns = None
        if variant == "header_order":
            # Another team's export: the same columns, the first two the other way round.
            names = contract.column_names
            columns = [names[1], names[0], *names[2:]]
        encoding = "latin-1" if variant == "latin1" else "utf-8"
        return DeliveredFile.open(contract, self.landing, relative, encoding=encoding, bom=bom, columns=columns)

    # --- presenting a person as a feed does -----------------------------------
    def present(self, rng: random.Random, feed: Feed, household: Household, record: Record, noisy: bool):
        """The record's row with identity as this feed holds it, and the identity damage done."""
        person, roles, org = record.person, feed.identity, feed.organisation
        row = {c: self._text(feed.name, v) for c, v in record.fields.items()}
        damages: list[Damage] = []
        roll = self.noise.roll

        nhs = person.nhs_number
        if noisy and roll(rng, "nhs_missing", org, getattr(self.spec.noise, f"nhs_missing_{org}")):
            nhs = ""
            damages.append(Damage("nhs_missing", roles["nhs"], "nhs_number null (missing)"))
        elif noisy and roll(rng, "nhs_wrong", org):
            nhs = nz.wrong_nhs_number(rng, nhs)
            outcome = "links to another number" if is_valid_nhs_number(nhs) else "nhs_number null (failed_modulus_11)"
            damages.append(Damage("nhs_wrong", roles["nhs"], outcome))
        if nhs and rng.random() < feed.spaced_nhs:
            nhs = spaced(nhs)
        row[roles["nhs"]] = nhs

        if "family" in roles:
            family, given = self._names(rng, person, org, damages, roles, noisy)
            row[roles["family"]], row[roles["given"]] = family, given

        dob = person.date_of_birth
        swapped = nz.transposed_dob(dob)
        if noisy and swapped is not None and roll(rng, "dob_transposed", org):
            dob = swapped
            damages.append(Damage("dob_transposed", roles["dob"], "lands; wrong date of birth"))
        row[roles["dob"]] = self._text(feed.name, dob)
        row[roles["sex"]] = feed.sex_codes[person.sex]
        if "ethnicity" in roles:
            row[roles["ethnicity"]] = "Z" if rng.random() < 0.05 else person.ethnic_code

        address = household.address_on(record.known)
        previous = household.previous_address_on(record.known)
        if noisy and previous is not None and roll(rng, "old_address", org):
            address = previous
            damages.append(Damage("old_address", roles["postcode"], "lands; an earlier address"))
        postcode = address.postcode
        if rng.random() < 0.1:
            postcode = postcode.replace(" ", "")  # many systems store it compact
        row[roles["postcode"]] = postcode
        return row, damages

    def _names(self, rng, person, org, damages, roles, noisy) -> tuple[str, str]:
        family, given = person.family_name, person.given_name
        if not noisy:
            return family, given
        roll = self.noise.roll
        fam, giv = roles["family"], roles["given"]
        if person.previous_family_name and roll(rng, "previous_name", org):
            family = person.previous_family_name
            damages.append(Damage("previous_name", fam, "lands; family name before a change"))
        if given in NICKNAMES and roll(rng, "nickname", org):
            given = nz.nickname(rng, given)
            damages.append(Damage("nickname", giv, "lands; nickname"))
        if (given in VARIANTS or family in VARIANTS) and roll(rng, "phonetic", org):
            if given in VARIANTS and (family not in VARIANTS or rng.random() < 0.5):
                given = nz.variant(rng, given)
                damages.append(Damage("phonetic", giv, "lands; variant spelling"))
            else:
                family = nz.variant(rng, family)
                damages.append(Damage("phonetic", fam, "lands; variant spelling"))
        if ("-" in family or " " in family) and roll(rng, "hyphenation", org):
            family = nz.unhyphenated(rng, family)
            damages.append(Damage("hyphenation", fam, "lands; double-barrelled name split or joined"))
        if roll(rng, "typo", org):
            if rng.random() < 0.5:
                family = nz.typo(rng, family)
                damages.append(Damage("typo", fam, "lands; typing error"))
            else:
                given = nz.typo(rng, given)
                damages.append(Damage("typo", giv, "lands; typing error"))
        if roll(rng, "swapped_names", org):
            family, given = given, family
            damages.append(Damage("swapped_names", f"{fam}+{giv}", "lands; given and family name swapped"))
        if roll(rng, "case_whitespace", org):
            family, given = nz.case_whitespace(rng, family), nz.case_whitespace(rng, given)
            damages.append(Damage("case_whitespace", f"{fam}+{giv}", "standardised away"))
        return family, given

    def _bad_row(self, rng: random.Random, feed: Feed, row: dict, record: Record) -> Damage | None:
        """At most one bad-row fault per record, so each has one expected outcome."""
        org, roll = feed.organisation, self.noise.roll
        if roll(rng, "impossible_date", org):
            row[feed.event_date] = nz.impossible_date(feed.contract.format["date_format"], record.known)
            return Damage("impossible_date", feed.event_date, "quarantine at clean")
        postcode_column = feed.identity["postcode"]
        if row.get(postcode_column) and roll(rng, "invalid_postcode", org):
            row[postcode_column] = nz.invalid_postcode(rng, row[postcode_column])
            return Damage("invalid_postcode", postcode_column, "postcode null; no geography")
        codes = [c for c in feed.code_columns if row.get(c)]
        if codes and roll(rng, "out_of_range_code", org):
            column = rng.choice(codes)
            row[column] = "99"
            return Damage("out_of_range_code", column, "quarantine at clean")
        if roll(rng, "ragged_row", org):
            return Damage("ragged_row", "", "quarantine at land")
        return None

    # --- one record, in every version the feed sends ----------------------------
    def emit(self, rng: random.Random, household: Household, record: Record) -> None:
        feed = self.feeds[record.source]
        key = feed.record_key
        row, damages = self.present(rng, feed, household, record, noisy=True)
        first = self.delivery_index(record.known)
        versions = [(first, row, "")]
        if record.closes is not None and record.closes > self.deliveries[first]:
            versions[0] = (first, {**row, **dict.fromkeys(record.open_fields, "")}, "")
            if record.closes <= self.spec.as_of:
                versions.append((self.delivery_index(record.closes), row, "update"))

        first_row = dict(versions[0][1])
        bad = self._bad_row(rng, feed, first_row, record)
        written = self._write(feed, first, first_row, ragged=bad is not None and bad.kind == "ragged_row")
        self.records.add([feed.name, row[key], record.person.truth_id, *written])
        for damage in [*damages, *([bad] if bad else [])]:
            self.damage.add([feed.name, row[key], *written, damage.kind, damage.field, damage.expected])
        for k, version_row, reason in versions[1:]:
            self.resends.add([feed.name, row[key], *self._write(feed, k, version_row), reason])

        last = versions[-1][0]
        if (
            (damages or bad)
            and last + 1 < len(self.deliveries)
            and self.noise.roll(rng, "correction", feed.organisation)
        ):
            # The source fixes the record and sends it again, as it should have been.
            clean, _ = self.present(rng, feed, household, record, noisy=False)
            if record.closes is not None and record.closes > self.deliveries[last + 1]:
                clean.update(dict.fromkeys(record.open_fields, ""))
            self.resends.add([feed.name, row[key], *self._write(feed, last + 1, clean), "correction"])

        if self.noise.roll(rng, "duplicate", feed.organisation):
            # Keyed in twice: the same event under a second record id.
            twin = {**versions[0][1], key: self.next_id(feed.name)}
            placed = self._write(feed, first, twin)
            self.records.add([feed.name, twin[key], record.person.truth_id, *placed])
            self.damage.add([feed.name, twin[key], *placed, "duplicate", key, f"lands; duplicate of {row[key]}"])

    def registered_twice(self, rng: random.Random, household: Household, record: Record) -> None:
        """A second registration under a second NHS number: one person, two NHS identities."""
        feed = self.feeds["gp_registrations"]
        if not self.noise.roll(rng, "registered_twice", feed.organisation):
            return
        row, _ = self.present(rng, feed, household, record, noisy=False)
        row["registration_id"] = self.next_id("gp_registrations")
        row["nhs_number"] = self.nhs.take()
        row["practice_code"] = row["practice_code"][:-1] + str((int(row["practice_code"][-1]) + 1) % 10)
        # Nobody closes the registration they do not know about: the second one stays open.
        row.update(dict.fromkeys(record.open_fields, ""))
        placed = self._write(feed, self.delivery_index(record.known), row)
        self.records.add([feed.name, row["registration_id"], record.person.truth_id, *placed])
        self.damage.add(
            [
                feed.name,
                row["registration_id"],
                *placed,
                "registered_twice",
                "nhs_number",
                "a second person unless linked",
            ]
        )

    def _write(self, feed: Feed, k: int, row: dict, ragged: bool = False) -> list:
        target = self._file(feed.name, k)
        line = target.line_for(row)
        if (
            target.sink.encoding == "latin-1"
            and target.rows == 0
            and line.encode("latin-1", "replace").isascii()
            and "given" in feed.identity
        ):
            # A Latin-1 file is only detectably not UTF-8 once it holds an accent: the first name gets one,
            # as the Latin-1 system that keeps accents would have it.
            given = feed.identity["given"]
            line = target.line_for({**row, given: nz.with_accent(row[given] or "e")})
        if ragged:
            if feed.contract.format.get("type") == "jsonl":
                line = line[: max(len(line) * 2 // 3, line.index(",") + 1)]  # cut off mid-object
            else:
                line = line.rsplit(feed.contract.format["delimiter"], 3)[0]  # the last fields lost
        return [self.deliveries[k].isoformat(), target.relative, target.write(line)]

    # --- the end ------------------------------------------------------------------
    def write_opt_outs(self, numbers: list[str]) -> DeliveredFile:
        """The opt-out list as NHS England returns it: the full current list, with the last delivery."""
        day = self.deliveries[-1]
        listed = DeliveredFile.open(
            source_contract("opt_outs"), self.landing, f"opt_outs/{day.isoformat()}/opt_outs_{day:%Y%m%d}.csv"
        )
        for number in numbers:
            listed.write(listed.line_for({"nhs_number": number}))
        listed.close()
        return listed

    def finish(self, geography: Geography, opt_outs: list[str]) -> dict[str, int]:
        listed = self.write_opt_outs(opt_outs)
        postcodes = source_contract("ons_postcodes")
        directory = DeliveredFile.open(
            postcodes, self.landing, f"ons_postcodes/{self.deliveries[0].isoformat()}/onspd.csv"
        )
        for row in geography.directory_rows():
            directory.write(directory.line_for(row))
        directory.close()
        written = {"ons_postcodes": directory.rows, "opt_outs": listed.rows}

        files = TruthTable(
            f"{self.truth_dir}/files.csv", ["source", "delivery", "file", "rows", "damage", "encoding", "expected"]
        )
        for (source, k, variant), delivered in sorted(self.files.items()):
            delivered.close()
            written[source] = written.get(source, 0) + delivered.rows
            damage = next((d for d in self.plan if (d.source, d.delivery) == (source, k) and d.kind == variant), None)
            if variant == "main":
                damage = next((d for d in self.plan if d.kind == "bom" and (d.source, d.delivery) == (source, k)), None)
            encoding = "latin-1" if variant == "latin1" else "utf-8"
            files.add(
                [
                    source,
                    self.deliveries[k].isoformat(),
                    delivered.relative,
                    delivered.rows,
                    damage.kind if damage else "",
                    encoding,
                    damage.expected if damage else "landed",
                ]
            )
        files.add(
            ["ons_postcodes", self.deliveries[0].isoformat(), directory.relative, directory.rows, "", "utf-8", "landed"]
        )
        files.add(["opt_outs", self.deliveries[-1].isoformat(), listed.relative, listed.rows, "", "utf-8", "landed"])
        for damage in self.plan:
            if damage.kind == "empty":
                day = self.deliveries[damage.delivery]
                relative = f"{damage.source}/{day.isoformat()}/{damage.source}_{day:%Y%m%d}_nil_return.jsonl"
                TextSink(f"{self.landing}/{relative}").close()  # a nil return: zero bytes
                files.add([damage.source, day.isoformat(), relative, 0, "empty", "utf-8", damage.expected])
            if damage.kind == "sent_twice" and (damage.source, damage.delivery, "main") in self.files:
                original = self.files[(damage.source, damage.delivery, "main")]
                day = self.deliveries[damage.delivery + 1]
                relative = f"{damage.source}/{day.isoformat()}/{original.relative.rsplit('/', 1)[1]}"
                copy_file(original.path, f"{self.landing}/{relative}")
                files.add(
                    [damage.source, day.isoformat(), relative, original.rows, "sent_twice", "utf-8", damage.expected]
                )
        files.close()

        rates = TruthTable(
            f"{self.truth_dir}/noise_rates.csv", ["kind", "organisation", "setting", "eligible", "applied"]
        )
        for row in self.noise.summary():
            rates.add(row)
        rates.close()
        for table in (self.records, self.resends, self.damage):
            table.close()
        return written


def generate(spec: PlaceSpec, landing: str, truth: str) -> dict[str, int]:
    """Write the place's deliveries under `landing` and its truth under `truth`; rows per source."""
    geography = Geography(spec.seed, spec.people)
    nhs = NhsNumbers(spec.seed)
    factory = PeopleFactory(geography, nhs, spec.period_start, spec.as_of)
    writer = PlaceWriter(spec, landing, truth)
    writer.nhs = nhs
    care = CareModel(factory, spec.history_start, spec.as_of, writer.next_id)
    people = TruthTable(
        f"{truth}/people.csv",
        [
            "truth_id",
            "household_id",
            "sex",
            "birth_year",
            "ethnic_code",
            "lsoa_code",
            "imd_decile",
            "frailty",
            "born_in_period",
            "death_month",
            "left_month",
        ],
    )
    opted_out = TruthTable(f"{truth}/opt_outs.csv", ["truth_id", "nhs_number"])
    # Its own stream, so choosing who opts out leaves every feed byte-identical to a place without the list.
    opt_out_rng = random.Random(spec.seed * 104_729 + 1)
    opt_out_numbers: list[str] = []
    made, index = 0, 0
    while made < spec.people:
        rng = random.Random(spec.seed * 7_919_993 + index)
        household = factory.household(rng, index, spec.people - made)
        made += len(household.members)
        first_gp: set[str] = set()
        for record in care.household_records(rng, household):
            writer.emit(rng, household, record)
            if record.source == "gp_registrations" and record.person.truth_id not in first_gp:
                first_gp.add(record.person.truth_id)
                writer.registered_twice(rng, household, record)
        lsoa = household.moves[0][1].lsoa
        for p in household.members:
            if opt_out_rng.random() < spec.opt_out_rate:
                opt_out_numbers.append(p.nhs_number)
                opted_out.add([p.truth_id, p.nhs_number])
            people.add(
                [
                    p.truth_id,
                    household.household_id,
                    p.sex,
                    p.date_of_birth.year,
                    p.ethnic_code,
                    lsoa.code,
                    lsoa.imd_decile,
                    p.frailty,
                    int(p.born_in_period),
                    p.death_date.strftime("%Y-%m") if p.death_date else "",
                    p.left_date.strftime("%Y-%m") if p.left_date else "",
                ]
            )
        index += 1
    people.close()
    opted_out.close()
    written = writer.finish(geography, opt_out_numbers)
    log.info("generated a place of %d people in %d households: %s", made, index, written)
    return written
