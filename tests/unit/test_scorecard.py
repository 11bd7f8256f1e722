from pyspark.testing import assertDataFrameEqual

from jobs.contracts import source_contract
from jobs.scorecard import field_scores


def test_completeness_validity_and_default_rates_per_field_and_month(spark):
    contract = source_contract("asc_services")
    columns = contract.column_names
    rows = [
        # service_id, client_id, nhs_number, surname, forename, dob, gender, postcode, service_type, start, end
        ("S1", "C1", "9990000026", "O'Brien", "Zoë", "01/02/1940", "F", "LK1 1AA", "HOME_CARE", "01/01/2025", None),
        ("S2", "C2", "9990000027", "Ng", "Mei", "31/02/1950", "U", "not a pc", "NURSING", "02/02/2025", ""),
        ("S3", "C3", None, "Smith", "Ann", "01/01/1900", "Q", None, "CAKE", "03/03/2025", None),
        ("S4", "C4", "9990000050", "Kelly", "Seán", "05/05/1945", "M", "LK2 1AB", "HOME_CARE", "04/04/2025", None),
    ]
    bronze = spark.createDataFrame(
        [(*r, "2025-11-01") for r in rows] + [(*rows[0], "2025-12-01")],
        ", ".join(f"{c} string" for c in columns) + ", _delivery string",
    )
    scores = (
        field_scores(bronze, contract)
        .where("delivery_month = '2025-11'")
        .select("field", "rows", "completeness", "validity", "default_rate")
    )
    by_field = {r.field: r for r in scores.collect()}
    assert set(by_field) == set(columns)
    # nhs_number: 3 of 4 present; of those, 2 pass Modulus 11.
    assert (by_field["nhs_number"].completeness, by_field["nhs_number"].validity) == (0.75, 0.6667)
    # dob: 31/02 is impossible; 01/01/1900 is valid but a default.
    assert (by_field["dob"].validity, by_field["dob"].default_rate) == (0.75, 0.25)
    # gender: Q is not in the code list; U is allowed but means unknown.
    assert (by_field["gender"].validity, by_field["gender"].default_rate) == (0.75, 0.25)
    assert (by_field["postcode"].completeness, by_field["postcode"].validity) == (0.75, 0.6667)
    # An empty string is as absent as a null.
    assert by_field["end_date"].completeness == 0.0
    expected_months = spark.createDataFrame([("2025-11", 4), ("2025-12", 1)], "delivery_month string, rows long")
    assertDataFrameEqual(field_scores(bronze, contract).select("delivery_month", "rows").distinct(), expected_months)
