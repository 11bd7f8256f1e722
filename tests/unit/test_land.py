from pyspark.testing import assertDataFrameEqual

from jobs.contracts import source_contract
from jobs.land import file_problem, parse_rows, scan_file


def _lines(spark, rows):
    return spark.createDataFrame(rows, "line long, value string")


def test_parse_rows_keeps_strings_as_delivered_and_catches_ragged_rows(spark):
    contract = source_contract("asc_services")
    lines = _lines(
        spark,
        [
            (2, "S1|C1||O'Brien|Zoë|01/02/1940|F|LK1 1AA|HOME_CARE|01/01/2025|"),
            (3, 'S2|C2|9990000026|"Smith|Jones"|Ann|05/06/1950|F|LK1 1AB|NURSING|02/02/2025|03/03/2025'),
            (4, "S3|C3|Bloggs|Joe"),
            (5, ""),
        ],
    )
    parsed = parse_rows(lines, contract).select(
        "service_id", "surname", "nhs_number", "postcode", "_line", "_reject_reason"
    )
    expected = spark.createDataFrame(
        [
            ("S1", "O'Brien", None, "LK1 1AA", 2, None),
            # A quoted delimiter stays inside its field.
            ("S2", "Smith|Jones", "9990000026", "LK1 1AB", 3, None),
            (None, None, None, None, 4, "row.ragged: 4 fields, contract has 11"),
            (None, None, None, None, 5, "row.blank_line"),
        ],
        "service_id string, surname string, nhs_number string, postcode string, _line long, _reject_reason string",
    )
    assertDataFrameEqual(parsed, expected)


def test_leading_zeros_survive_landing(spark):
    contract = source_contract("gp_registrations")
    lines = _lines(spark, [(2, "R1,0123456789,Ng,Mei,2001-01-01,2,LK1 1AA,Y02101,2020-01-01,,")])
    assert parse_rows(lines, contract).first()["nhs_number"] == "0123456789"


def test_gp_deregistration_lands_as_delivered_and_an_open_registration_is_not_ragged(spark):
    contract = source_contract("gp_registrations")
    lines = _lines(
        spark,
        [
            (2, "R1,,O'Neill,Seán,1931-02-28,1,,Y90101,2010-05-04,2026-03-09,death"),
            (3, "R2,,Ng,Mei,2001-01-01,2,LK1 1AA,Y90102,2020-01-01,,"),
            # Sent by an extract from before deregistration existed: two fields short.
            (4, "R3,,Ng,Mei,2001-01-01,2,LK1 1AA,Y90102,2020-01-01"),
        ],
    )
    parsed = parse_rows(lines, contract).select(
        "registration_id", "deregistration_date", "deregistration_reason", "_line", "_reject_reason"
    )
    expected = spark.createDataFrame(
        [
            ("R1", "2026-03-09", "death", 2, None),
            ("R2", None, None, 3, None),
            (None, None, None, 4, "row.ragged: 9 fields, contract has 11"),
        ],
        "registration_id string, deregistration_date string, deregistration_reason string, _line long, "
        "_reject_reason string",
    )
    assertDataFrameEqual(parsed, expected)


def _scan(tmp_path, text: bytes):
    path = tmp_path / "f.csv"
    path.write_bytes(text)
    return scan_file(str(path))


def test_file_checks_reject_with_a_named_rule(tmp_path):
    contract = source_contract("gp_registrations")
    header = ",".join(contract.column_names)
    shuffled = ",".join(reversed(contract.column_names))

    assert file_problem(_scan(tmp_path, b""), contract)[0] == "file.not_empty"
    assert file_problem(_scan(tmp_path, (header + "\n").encode()), contract)[0] == "file.no_rows"
    assert file_problem(_scan(tmp_path, (shuffled + "\nx\n").encode()), contract)[0] == "file.header_order"
    assert file_problem(_scan(tmp_path, b"a,b\n1,2\n"), contract)[0] == "file.header"
    latin1 = (header + "\nR1,,Nu\xf1ez,Ana,2001-01-01,2,,Y02101,2020-01-01,,\n").encode("latin-1")
    assert file_problem(_scan(tmp_path, latin1), contract)[0] == "file.encoding"
    assert file_problem(_scan(tmp_path, (header + "\nrow\n").encode()), contract) is None


def test_scan_counts_lines_with_or_without_a_final_newline(tmp_path):
    assert _scan(tmp_path, b"h\r\na\r\nb\r\n").lines == 3
    assert _scan(tmp_path, b"h\na\nb").lines == 3
    assert _scan(tmp_path, b"\xef\xbb\xbfh\na\n").header == "h"


def test_json_lines_land_as_strings_and_bad_lines_are_quarantined(spark):
    from dataclasses import replace

    contract = replace(source_contract("gp_registrations"), format={"type": "jsonl", "encoding": "utf-8"})
    lines = _lines(
        spark,
        [
            (1, '{"registration_id": "R1", "nhs_number": "0123456789", "family_name": "O\'Brien", "sex": 2}'),
            (2, '{"registration_id": "R2", "surname": "extra key"}'),
            (3, '{"registration_id": "R3", "family_name": {"nested": true}}'),
            (4, "not json"),
            (5, "[1, 2]"),
        ],
    )
    parsed = parse_rows(lines, contract).select(
        "registration_id", "nhs_number", "family_name", "sex", "_line", "_reject_reason"
    )
    expected = spark.createDataFrame(
        [
            ("R1", "0123456789", "O'Brien", "2", 1, None),
            (None, None, None, None, 2, "row.unexpected_keys: ['surname']"),
            (None, None, None, None, 3, "row.nested_value: contract columns hold scalars"),
            (None, None, None, None, 4, "row.unparseable: not JSON (Expecting value)"),
            (None, None, None, None, 5, "row.unparseable: a JSON line must be an object"),
        ],
        "registration_id string, nhs_number string, family_name string, sex string, _line long, _reject_reason string",
    )
    assertDataFrameEqual(parsed, expected)
