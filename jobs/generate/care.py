"""What happens to the people of one household: care events with real answers.

Rates depend on age, deprivation and frailty, so the questions analysts ask
have answers: frail older people attend A&E and are admitted again and again;
some emergency stays end in a delayed discharge while a social care package
is arranged; social care support, once started, lowers A&E attendance;
winter raises everything. Each event becomes one source record with its true
field values; identity fields are added (and damaged) later, per feed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from jobs.generate import reference as ref
from jobs.generate.people import Household, PeopleFactory, Person, gone_on

# Annual A&E attendances by age, before deprivation and frailty.
_AE_RATE = [(5, 0.45), (18, 0.25), (65, 0.28), (75, 0.40), (85, 0.65), (200, 1.0)]
_FRAILTY_MULT = [1.0, 1.6, 2.6, 4.0]
_MORTALITY = [(1, 0.004), (65, 0.002), (75, 0.015), (85, 0.045), (200, 0.13)]
SUPPORT_EFFECT = 0.7  # A&E attendances after social care support starts, relative to before


@dataclass(slots=True)
class Record:
    """One source record: its true values, when the source learns of it, and when it is complete."""

    source: str
    person: Person
    known: date
    fields: dict
    closes: date | None = None  # the end date: until then the open fields are empty
    open_fields: tuple[str, ...] = ()


def _lookup(table: list[tuple[int, float]], age: int) -> float:
    return next(v for upper, v in table if age < upper)


def _age(person: Person, on: date) -> int:
    return (on - person.date_of_birth).days // 365


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small means of individual event counts.
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def winter_weight(day: date) -> float:
    return {12: 1.35, 1: 1.4, 2: 1.25, 3: 1.1, 11: 1.1, 6: 0.85, 7: 0.85, 8: 0.85}.get(day.month, 1.0)


def _seasonal_day(rng: random.Random, start: date, end: date) -> date:
    span = max(1, (end - start).days)
    while True:
        day = start + timedelta(days=rng.randrange(span))
        if rng.random() * 1.4 < winter_weight(day):
            return day


class CareModel:
    def __init__(self, factory: PeopleFactory, history_start: date, as_of: date, ids) -> None:
        self.factory = factory
        self.history_start = history_start
        self.period_start = factory.period_start
        self.as_of = as_of
        self.ids = ids  # callable(source) -> the next record id for that source

    # --- lives ---------------------------------------------------------------
    def _deaths_and_births(self, rng: random.Random, household: Household) -> None:
        period_days = (self.as_of - self.period_start).days
        years = period_days / 365
        for person in list(household.members):
            person.left_date = household.left
            age = _age(person, self.period_start)
            p_death = _lookup(_MORTALITY, age) * _FRAILTY_MULT[person.frailty] * years
            if rng.random() < p_death:
                person.death_date = self.period_start + timedelta(days=rng.randrange(period_days))
            if (
                person.sex == "F"
                and 18 <= age <= 44
                and household.kind in ("couple", "couple_children", "lone_parent")
                and rng.random() < 0.07 * years
            ):
                born = self.period_start + timedelta(days=rng.randrange(period_days))
                if (person.death_date is None or person.death_date > born) and (
                    household.left is None or household.left > born
                ):
                    household.members.append(self.factory.baby(rng, household, person, born))

    # --- one record per event -------------------------------------------------
    def _record(self, source: str, person: Person, known: date, fields: dict, **kw) -> Record:
        return Record(source, person, known, fields, **kw)

    def _gp(self, rng: random.Random, household: Household, person: Person) -> list[Record]:
        if rng.random() < 0.03 and not person.born_in_period:
            return []  # not registered with a practice in the place
        if person.born_in_period:
            registered = person.date_of_birth + timedelta(days=rng.randint(7, 45))
        else:
            registered = max(person.date_of_birth, self.period_start - timedelta(days=rng.randrange(1, 7300)))
        registered = min(registered, self.as_of)
        gone = gone_on(person)
        spells = [(registered, household.address_on(registered))]
        for start, address in household.moves:
            if start > registered and (gone is None or start < gone):
                if address.lsoa.ward_code != household.address_on(registered).lsoa.ward_code and start < self.as_of:
                    spells.append((start + timedelta(days=rng.randint(0, 40)), address))
        spells = [(day, address) for day, address in spells if day <= self.as_of and (gone is None or day < gone)]
        # Registering at a new practice ends the one before; the last ends with death or moving away.
        ends = [(day, "transferred") for day, _ in spells[1:]] + [self._deregistration(rng, person)]
        return [self._gp_row(rng, person, day, address, end) for (day, address), end in zip(spells, ends, strict=True)]

    def _deregistration(self, rng: random.Random, person: Person) -> tuple[date | None, str | None]:
        """When and why a person's last registration ends, if the extract can know it by as_of."""
        if person.death_date is not None and (person.left_date is None or person.death_date < person.left_date):
            # PDS tells the practice of a death within days.
            end, reason = person.death_date + timedelta(days=rng.randint(1, 14)), "death"
        elif person.left_date is not None:
            # A practice learns of a move away only when the patient registers elsewhere.
            end, reason = person.left_date + timedelta(days=rng.randint(14, 120)), "moved_away"
        else:
            return None, None
        return (end, reason) if end <= self.as_of else (None, None)

    def _gp_row(
        self, rng: random.Random, person: Person, registered: date, address, end: tuple[date | None, str | None]
    ) -> Record:
        practice = f"Y9{int(address.lsoa.ward_code[-2:]):02d}{rng.randint(0, 1)}{rng.randint(0, 9)}"
        ended, reason = end
        return self._record(
            "gp_registrations",
            person,
            registered,
            {
                "registration_id": self.ids("gp_registrations"),
                "practice_code": practice,
                "registration_date": registered,
                "deregistration_date": ended,
                "deregistration_reason": reason,
            },
            closes=ended,
            open_fields=("deregistration_date", "deregistration_reason"),
        )

    def _lifetime(self, person: Person) -> tuple[date, date]:
        start = max(self.history_start, person.date_of_birth)
        end = min(self.as_of, gone_on(person) or self.as_of)
        return start, end

    def _apc(
        self,
        rng: random.Random,
        person: Person,
        admitted: date,
        method: str,
        diagnosis: str,
        *,
        delay: int = 0,
        destination: str | None = None,
        stay: int | None = None,
    ) -> Record:
        age = _age(person, admitted)
        if stay is None:
            mean = 1.5 if method in ref.ADMISSION_METHODS_ELECTIVE else (3 if age < 65 else 6 + 3 * person.frailty)
            stay = 0 if rng.random() < 0.25 else int(rng.expovariate(1 / mean))
        ready = admitted + timedelta(days=stay)
        discharged = ready + timedelta(days=delay)
        if destination is None:
            destination = ref.DISCHARGE_HOME if rng.random() < 0.93 else ref.DISCHARGE_TEMPORARY
        return self._record(
            "apc_episodes",
            person,
            admitted,
            {
                "episode_id": self.ids("apc_episodes"),
                "provider_code": rng.choice(ref.TREATMENT_SITES),
                "admission_date": admitted,
                "admission_method": method,
                "primary_diagnosis": diagnosis,
                "discharge_ready_date": ready,
                "discharge_date": discharged,
                "discharge_destination": destination,
            },
            closes=discharged,
            open_fields=("discharge_ready_date", "discharge_date", "discharge_destination"),
        )

    def _asc_service(self, rng: random.Random, person: Person, start: date, kind: str, client: str) -> Record:
        length = {"REABLEMENT": 42, "RESIDENTIAL": 900, "NURSING": 700}.get(kind, 300)
        end = start + timedelta(days=max(7, int(rng.expovariate(1 / length))))
        if gone_on(person) is not None:
            end = max(start, min(end, gone_on(person)))
        return self._record(
            "asc_services",
            person,
            start,
            {
                "service_id": self.ids("asc_services"),
                "client_id": client,
                "service_type": kind,
                "start_date": start,
                "end_date": end,
            },
            closes=end,
            open_fields=("end_date",),
        )

    def _asc_event(
        self, person: Person, day: date, client: str, event_type: str, outcome: str, route: str | None = None
    ) -> Record:
        return self._record(
            "asc_events",
            person,
            day,
            {
                "event_id": self.ids("asc_events"),
                "client_id": client,
                "event_type": event_type,
                "event_date": day,
                "route_of_access": route,
                "event_outcome": outcome,
            },
        )

    def _asc_pathway(
        self,
        rng: random.Random,
        person: Person,
        start: date,
        kind: str,
        client: str,
        route: str,
        requested: date | None = None,
    ) -> list[Record]:
        """A service with the CLD events around it: a request and an assessment before it, and reviews
        of long-term support while it lasts (reablement is short-term and is not reviewed)."""
        if requested is None:
            requested = start - timedelta(days=rng.randint(7, 42))
        requested = min(start, max(requested, person.date_of_birth))
        assessed = requested + timedelta(days=rng.randint(0, (start - requested).days))
        short_term = kind == "REABLEMENT"
        service = self._asc_service(rng, person, start, kind, client)
        records = [
            self._asc_event(person, requested, client, "REQUEST", "ASSESSMENT", route),
            self._asc_event(
                person, assessed, client, "ASSESSMENT", "SHORT_TERM_SUPPORT" if short_term else "LONG_TERM_SUPPORT"
            ),
            service,
        ]
        if short_term:
            return records
        end = service.fields["end_date"]
        # Councils review long-term support within weeks of it starting, then every year.
        review = start + timedelta(days=rng.randint(42, 120))
        while review < end and review <= self.as_of:
            outcome = "CHANGE_IN_SUPPORT" if rng.random() < 0.25 else "NO_CHANGE"
            records.append(self._asc_event(person, review, client, "REVIEW", outcome))
            review += timedelta(days=rng.randint(300, 430))
        gone = gone_on(person)
        if end <= self.as_of and (gone is None or end < gone):
            # Support that ends while the client still lives here ends at a review.
            records.append(self._asc_event(person, end, client, "REVIEW", "SUPPORT_ENDED"))
        return records

    def _asc_requests_without_service(
        self, rng: random.Random, person: Person, start: date, end: date, rate: float, client: str
    ) -> list[Record]:
        """Most requests for support end in advice, signposting or an assessment that finds no eligible need."""
        records = []
        for _ in range(_poisson(rng, rate)):
            requested = _seasonal_day(rng, start, end)
            route = "SAFEGUARDING" if rng.random() < 0.1 else "COMMUNITY"
            outcome = rng.choices(["NO_FURTHER_ACTION", "UNIVERSAL_SERVICES", "ASSESSMENT"], [0.45, 0.35, 0.2])[0]
            records.append(self._asc_event(person, requested, client, "REQUEST", outcome, route))
            assessed = requested + timedelta(days=rng.randint(3, 28))
            if outcome == "ASSESSMENT" and assessed <= end:
                records.append(self._asc_event(person, assessed, client, "ASSESSMENT", "NO_FURTHER_ACTION"))
        return records

    def _person_events(self, rng: random.Random, household: Household, person: Person, imd: int) -> list[Record]:
        start, end = self._lifetime(person)
        if end <= start:
            return []
        years = (end - start).days / 365
        age = _age(person, self.period_start)
        frail = person.frailty
        deprivation = 1.0 + 0.07 * (5 - imd)
        records: list[Record] = []
        client = f"C{int(person.truth_id[1:]):08d}"

        # Long-term social care support: rises with frailty; learning disability in working age.
        support_start = None
        p_support = {0: 0.004 if age >= 18 else 0.0, 1: 0.10, 2: 0.30, 3: 0.60}[frail] * deprivation
        if rng.random() < p_support:
            support_start = start + timedelta(days=rng.randrange(max(1, (end - start).days)))
            if rng.random() < 0.5:
                support_start = self.history_start - timedelta(days=rng.randrange(30, 1500))
            kind = "RESIDENTIAL" if frail == 3 and rng.random() < 0.4 else rng.choice(["HOME_CARE", "DIRECT_PAYMENT"])
            if support_start < start and person.date_of_birth >= support_start:
                support_start = start
            route = rng.choices(["COMMUNITY", "SAFEGUARDING", "SELF_FUNDER"], [0.8, 0.1, 0.1])[0]
            records.extend(
                self._asc_pathway(rng, person, max(support_start, person.date_of_birth), kind, client, route)
            )
        if age >= 65 or frail:
            rate = (0.04 + 0.05 * frail) * deprivation * years
            records.extend(self._asc_requests_without_service(rng, person, start, end, rate, client))

        # A&E: seasonal, deprivation- and frailty-driven; fewer once support has started.
        ae_rate = _lookup(_AE_RATE, age) * deprivation * _FRAILTY_MULT[frail]
        for _ in range(_poisson(rng, ae_rate * years)):
            arrived = _seasonal_day(rng, start, end)
            if support_start is not None and arrived >= support_start and rng.random() > SUPPORT_EFFECT:
                continue
            older = age >= 65
            admit_p = (0.12 if age < 65 else 0.30) + 0.08 * frail
            admitted = rng.random() < admit_p
            complaint = (
                rng.choice(["Fall", "Confusion", "Shortness of breath"])
                if frail
                else rng.choice(ref.AE_CHIEF_COMPLAINTS)
            )
            ambulance = rng.random() < (0.6 if older else 0.2)
            records.append(
                self._record(
                    "ae_attendances",
                    person,
                    arrived,
                    {
                        "attendance_id": self.ids("ae_attendances"),
                        "provider_code": rng.choice(ref.TREATMENT_SITES),
                        "arrival_date": arrived,
                        "arrival_mode": "1" if ambulance else "2",
                        "acuity": rng.choice(ref.AE_ACUITY[:3] if admitted else ref.AE_ACUITY[1:]),
                        "chief_complaint": complaint,
                        "discharge_destination": ref.AE_ADMITTED
                        if admitted
                        else rng.choice([d for d in ref.AE_DISCHARGE_DESTINATIONS if d != ref.AE_ADMITTED]),
                    },
                )
            )
            if admitted:
                records.extend(self._emergency_stay(rng, person, arrived, "21", client))

        # Emergency admissions not via A&E, and planned care.
        for _ in range(_poisson(rng, 0.3 * ae_rate * years * 0.3)):
            records.extend(self._emergency_stay(rng, person, _seasonal_day(rng, start, end), "22", client))
        elective_rate = 0.04 if age < 50 else (0.10 if age < 70 else 0.16)
        for _ in range(_poisson(rng, elective_rate * years)):
            day = start + timedelta(days=rng.randrange(max(1, (end - start).days)))
            method = rng.choice(ref.ADMISSION_METHODS_ELECTIVE)
            records.append(self._apc(rng, person, day, method, rng.choice(ref.ICD10_ELECTIVE)))

        # Community services: district nursing for the frail, health visiting for the under-5s.
        team = None
        rate = 0.0
        if frail:
            team, rate = ("DISTRICT_NURSING" if frail > 1 else "COMMUNITY_MATRON"), [0, 3, 8, 14][frail]
        elif age < 5:
            team, rate = "HEALTH_VISITING", 2.0
        elif age >= 65:
            team, rate = rng.choice(["PODIATRY", "PHYSIOTHERAPY"]), 0.4
        for _ in range(_poisson(rng, rate * years)):
            records.append(
                self._community(rng, person, start + timedelta(days=rng.randrange((end - start).days or 1)), team)
            )

        # Dying in hospital: the last stay ends with the death.
        if person.death_date is not None and rng.random() < 0.45:
            admitted = person.death_date - timedelta(days=rng.randint(0, 12))
            if admitted >= start and person.death_date == gone_on(person):
                diagnosis = rng.choice(ref.ICD10_FRAIL_EMERGENCY if age >= 65 else ref.ICD10_ADULT_EMERGENCY)
                records.append(
                    self._apc(
                        rng,
                        person,
                        admitted,
                        "21",
                        diagnosis,
                        stay=(person.death_date - admitted).days,
                        destination=ref.DISCHARGE_DIED,
                    )
                )
        return records

    def _community(self, rng: random.Random, person: Person, day: date, team: str) -> Record:
        return self._record(
            "community_contacts",
            person,
            day,
            {
                "contact_id": self.ids("community_contacts"),
                "team_type": team,
                "contact_date": day,
                "contact_location": "HOME"
                if team in ("DISTRICT_NURSING", "HEALTH_VISITING")
                else rng.choice(ref.CONTACT_LOCATIONS),
                "attendance_code": rng.choices(ref.ATTENDANCE, [0.85, 0.05, 0.03, 0.07])[0],
            },
        )

    def _emergency_stay(self, rng: random.Random, person: Person, admitted: date, method: str, client: str):
        age = _age(person, admitted)
        if gone_on(person) is not None and admitted >= gone_on(person):
            return []
        pool = (
            ref.ICD10_CHILD_EMERGENCY
            if age < 18
            else (
                ref.ICD10_FRAIL_EMERGENCY
                if age >= 65 and (person.frailty or rng.random() < 0.4)
                else ref.ICD10_ADULT_EMERGENCY
            )
        )
        diagnosis = rng.choice(pool)
        # Delayed discharge: ready to leave, waiting on a social care package (longer in winter).
        if age >= 65 and person.frailty and rng.random() < 0.12 * person.frailty:
            delay = max(1, int(rng.expovariate(1 / (9 * winter_weight(admitted)))))
            care_home = person.frailty == 3 and rng.random() < 0.4
            destination = ref.DISCHARGE_NON_NHS_CARE_HOME if care_home else ref.DISCHARGE_HOME
            stay = self._apc(rng, person, admitted, method, diagnosis, delay=delay, destination=destination)
            discharged = stay.fields["discharge_date"]
            if gone_on(person) is not None and discharged >= gone_on(person):
                return [stay]
            package = "RESIDENTIAL" if care_home else rng.choice(["REABLEMENT", "HOME_CARE"])
            # The ward asks for a package once the patient is nearly ready to leave.
            asked = stay.fields["discharge_ready_date"] - timedelta(days=rng.randint(0, 3))
            pathway = self._asc_pathway(
                rng, person, discharged, package, client, "HOSPITAL_DISCHARGE", requested=max(asked, admitted)
            )
            return [stay, *pathway]
        return [self._apc(rng, person, admitted, method, diagnosis)]

    def _housing(self, rng: random.Random, household: Household, imd: int) -> list[Record]:
        adults = [p for p in household.members if _age(p, self.period_start) >= 18 and not p.born_in_period]
        if not adults:
            return []
        base = {"single_adult": 0.02, "lone_parent": 0.05, "shared": 0.03}.get(household.kind, 0.006)
        years = (self.as_of - self.history_start).days / 365
        if rng.random() >= base * (1.0 + 0.15 * (5 - imd)) * years:
            return []
        applicant = adults[0]
        approached = self.history_start + timedelta(days=rng.randrange((self.as_of - self.history_start).days))
        if gone_on(applicant) is not None and approached >= gone_on(applicant):
            return []
        duty = rng.choices(ref.HOUSING_DUTIES, [0.55, 0.35, 0.10])[0]
        ended = approached + timedelta(days={"PREVENTION": 56, "RELIEF": 56}.get(duty, 180) + rng.randint(-20, 60))
        age = _age(applicant, approached)
        need = (
            "OLD_AGE"
            if age >= 65
            else (
                "PHYSICAL_ILL_HEALTH"
                if applicant.frailty
                else rng.choices(ref.HOUSING_SUPPORT_NEEDS, [0.5, 0.2, 0.05, 0.0, 0.1, 0.15 if age < 25 else 0.0])[0]
            )
        )
        return [
            self._record(
                "housing_cases",
                applicant,
                approached,
                {
                    "case_id": self.ids("housing_cases"),
                    "household_size": str(len(household.members)),
                    "approach_date": approached,
                    "duty_type": duty,
                    "reason_for_loss": rng.choice(ref.HOUSING_REASONS),
                    "support_need": need,
                    "duty_end_date": ended,
                    "outcome": rng.choice([o for o in ref.HOUSING_OUTCOMES if o != "ONGOING"]),
                },
                closes=ended,
                open_fields=("duty_end_date", "outcome"),
            )
        ]

    def household_records(self, rng: random.Random, household: Household) -> list[Record]:
        self._deaths_and_births(rng, household)
        imd = household.moves[0][1].lsoa.imd_decile
        records: list[Record] = []
        for person in household.members:
            records.extend(self._gp(rng, household, person))
            records.extend(self._person_events(rng, household, person, imd))
        mothers = {p.truth_id: p for p in household.members}
        for baby in household.members:
            mother = mothers.get(baby.mother_id) if baby.born_in_period else None
            if mother is not None:
                stay = rng.randint(0, 3)
                diagnosis = rng.choice(ref.ICD10_MATERNITY)
                records.append(
                    self._apc(rng, mother, baby.date_of_birth, ref.ADMISSION_METHOD_MATERNITY, diagnosis, stay=stay)
                )
        records.extend(self._housing(rng, household, imd))
        return [r for r in records if r.known <= self.as_of]
