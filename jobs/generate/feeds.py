"""How each feed presents a person: which of its contract's columns carry
which identity, and how it codes sex. The columns and their formats come
from the contract (schemas/); this only names the roles the generator fills.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.contracts import Contract, source_contract


@dataclass(frozen=True)
class Feed:
    contract: Contract
    identity: dict[str, str]  # role -> column: nhs, family, given, dob, sex, postcode, ethnicity
    sex_codes: dict[str, str]
    event_date: str  # the column an impossible date lands in
    spaced_nhs: float = 0.0  # share of NHS numbers written 3-3-4 with spaces

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def organisation(self) -> str:
        return self.contract.organisation

    @property
    def record_key(self) -> str:
        return self.contract.record_key[0]

    @property
    def date_columns(self) -> frozenset[str]:
        return frozenset(c.name for c in self.contract.columns if c.type == "date")

    @property
    def code_columns(self) -> tuple[str, ...]:
        """Coded event columns (an out-of-range value is a bad row); identity codes are left alone."""
        roles = set(self.identity.values())
        return tuple(c.name for c in self.contract.columns if c.allowed and c.name not in roles)


_NHS_SEX = {"M": "1", "F": "2", "U": "9"}
_LETTER_SEX = {"M": "M", "F": "F", "U": "U"}
_ROLES_NAMED = {"family": "family_name", "given": "given_name", "dob": "date_of_birth"}
_ROLES_COUNCIL = {"family": "surname", "given": "forename", "dob": "dob"}


def _feed(name: str, roles: dict[str, str], sex: dict[str, str], event_date: str, spaced: float = 0.0) -> Feed:
    return Feed(source_contract(name), roles, sex, event_date, spaced)


def feeds() -> tuple[Feed, ...]:
    """Every person-level feed the place delivers, in contract-name order."""
    common = {"nhs": "nhs_number", "postcode": "postcode"}
    return (
        _feed(
            "ae_attendances",
            {**common, **_ROLES_NAMED, "sex": "sex", "ethnicity": "ethnic_category"},
            _NHS_SEX,
            "arrival_date",
        ),
        _feed(
            "apc_episodes",
            {**common, "dob": "date_of_birth", "sex": "sex", "ethnicity": "ethnic_category"},
            _NHS_SEX,
            "admission_date",
        ),
        _feed("asc_events", {**common, **_ROLES_COUNCIL, "sex": "gender"}, _LETTER_SEX, "event_date"),
        _feed("asc_services", {**common, **_ROLES_COUNCIL, "sex": "gender"}, _LETTER_SEX, "start_date"),
        _feed("community_contacts", {**common, **_ROLES_COUNCIL, "sex": "gender"}, _LETTER_SEX, "contact_date", 0.3),
        _feed("gp_registrations", {**common, **_ROLES_NAMED, "sex": "sex"}, _NHS_SEX, "registration_date", 0.5),
        _feed(
            "housing_cases",
            {**common, **_ROLES_COUNCIL, "sex": "gender", "ethnicity": "ethnicity"},
            _LETTER_SEX,
            "approach_date",
        ),
    )
