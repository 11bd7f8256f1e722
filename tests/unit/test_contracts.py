import pytest
from pyspark.sql import types as T

from jobs.contracts import ContractError, conform, gold_contracts, source_contracts, table_contract


def test_every_contract_parses_and_declares_pii_for_every_column():
    contracts = list(source_contracts()) + list(gold_contracts())
    contracts += [table_contract("silver", n) for n in ("person_event", "postcode", "person_link", "person")]
    assert {c.name for c in source_contracts()} >= {"gp_registrations", "asc_services"}
    for contract in contracts:
        assert contract.grain.startswith("One row per"), contract.name
        assert all(col.pii in {"direct", "quasi", "none"} for col in contract.columns)


def test_sources_include_a_council_and_an_nhs_extract():
    organisations = {c.organisation for c in source_contracts() if c.kind == "person_events"}
    assert {"council", "nhs"} <= organisations


def test_bronze_reads_every_column_as_a_string_so_leading_zeros_survive():
    for contract in source_contracts():
        assert all(isinstance(f.dataType, T.StringType) for f in contract.raw_schema().fields)
        assert contract.raw_schema().fieldNames() == contract.column_names


def test_gold_contracts_carry_no_direct_identifiers():
    for contract in gold_contracts():
        assert contract.direct_identifiers == [], contract.name


def test_conform_selects_contract_order_and_fails_on_drift(spark):
    contract = table_contract("silver", "postcode")
    good = spark.createDataFrame(
        [(True, 3, "Castle", "E05009001", "E01090004", "LK2 1AA", "extra")],
        "terminated boolean, imd_decile int, ward_name string, ward_code string, lsoa_code string, postcode string, x string",
    )
    assert conform(good, contract).columns == contract.column_names

    wrong_type = good.withColumn("imd_decile", good["imd_decile"].cast("string"))
    with pytest.raises(ContractError, match="imd_decile"):
        conform(wrong_type, contract)
    with pytest.raises(ContractError, match="missing column 'ward_name'"):
        conform(good.drop("ward_name"), contract)
