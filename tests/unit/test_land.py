"""Landing's pure parts: scanning bytes, file checks, record parsing, delivery dates.
No Spark here: tests/integration/test_landing.py lands real files into Delta."""

import gzip
from dataclasses import replace

from jobs.contracts import source_contract
from jobs.land import Record, csv_records, delivery_date, file_problem, jsonl_records, record_reader, scan_file


def _scan(tmp_path, data: bytes, name="f.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return scan_file(str(path))


def _records(contract, text: str) -> list[Record]:
    return list(record_reader(contract)(text.splitlines(keepends=True)))


def test_csv_records_keep_strings_as_delivered_and_catch_ragged_rows():
    contract = source_contract("asc_services")
    header = "|".join(contract.column_names)
    text = (
        f"{header}\n"
        "S1|C1||O'Brien|Zoë|01/02/1940|F|LK1 1AA|HOME_CARE|01/01/2025|\n"
        'S2|C2|9990000026|"Smith|Jones"|Ann|05/06/1950|F|LK1 1AB|NURSING|02/02/2025|03/03/2025\n'
        "S3|C3|Bloggs|Joe\n"
        "\n"
    )
    records = _records(contract, text)
    assert [(r.line, r.reason) for r in records] == [
        (2, None),
        (3, None),
        (4, "row.ragged: 4 fields, contract has 11"),
        (5, "row.blank_line"),
    ]
    assert records[0].fields[:5] == ["S1", "C1", None, "O'Brien", "Zoë"]
    assert records[1].fields[3] == "Smith|Jones"  # a quoted delimiter stays inside its field
    assert records[2].raw == "S3|C3|Bloggs|Joe"  # the reject keeps the row as delivered


def test_quoted_newlines_stay_in_their_field_and_line_numbers_stay_physical():
    text = 'a,b\n1,"two\nlines"\n2,"say ""hi"""\r\n3,"three\n\nlines"\n4,x\n'
    records = list(csv_records(text.splitlines(keepends=True), ["a", "b"], ",", '"'))
    assert [(r.line, r.lines, r.fields) for r in records] == [
        (1, 1, ["a", "b"]),
        (2, 2, ["1", "two\nlines"]),
        (4, 1, ["2", 'say "hi"']),
        (5, 3, ["3", "three\n\nlines"]),
        (8, 1, ["4", "x"]),
    ]
    assert sum(r.lines for r in records) == 8  # every physical line belongs to one record


def test_unparseable_rows_are_rejected_and_parsing_resumes_on_the_next_line():
    text = 'a,b\n"1"x,2\n3,4\n5,"never closed\n6,7\n'
    records = list(csv_records(text.splitlines(keepends=True), ["a", "b"], ",", '"'))
    assert [(r.line, r.lines, r.reason) for r in records] == [
        (1, 1, None),
        (2, 1, "row.unparseable: ',' expected after '\"'"),
        (3, 1, None),
        (4, 2, "row.unparseable: the file ends inside a quoted field"),
    ]
    assert records[3].raw == '5,"never closed\n6,7'


def test_leading_zeros_survive_landing():
    contract = source_contract("gp_registrations")
    header = ",".join(contract.column_names)
    records = _records(contract, f"{header}\nR1,0123456789,Ng,Mei,2001-01-01,2,LK1 1AA,Y02101,2020-01-01,,\n")
    assert records[0].fields[1] == "0123456789"


def test_gp_deregistration_lands_as_delivered_and_an_open_registration_is_not_ragged():
    contract = source_contract("gp_registrations")
    header = ",".join(contract.column_names)
    text = (
        f"{header}\n"
        "R1,,O'Neill,Seán,1931-02-28,1,,Y90101,2010-05-04,2026-03-09,death\n"
        "R2,,Ng,Mei,2001-01-01,2,LK1 1AA,Y90102,2020-01-01,,\n"
        # Sent by an extract from before deregistration existed: two fields short.
        "R3,,Ng,Mei,2001-01-01,2,LK1 1AA,Y90102,2020-01-01\n"
    )
    records = _records(contract, text)
    assert [(r.line, r.reason) for r in records] == [(2, None), (3, None), (4, "row.ragged: 9 fields, contract has 11")]
    assert records[0].fields[-2:] == ["2026-03-09", "death"]
    assert records[1].fields[-2:] == [None, None]


def test_json_lines_land_as_strings_and_bad_lines_are_quarantined():
    contract = replace(source_contract("gp_registrations"), format={"type": "jsonl", "encoding": "utf-8"})
    lines = [
        '{"registration_id": "R1", "nhs_number": "0123456789", "family_name": "O\'Brien", "sex": 2}\n',
        '{"registration_id": "R2", "surname": "extra key"}\n',
        '{"registration_id": "R3", "family_name": {"nested": true}}\n',
        "not json\n",
        "[1, 2]\n",
        "\n",
        '{"registration_id": "R7", "family_name": "Ng", "sex": null}\n',
        '{"registration_id": "R8", "sex": true}\n',
    ]
    records = list(jsonl_records(lines, contract.column_names))
    assert [(r.line, r.reason) for r in records] == [
        (1, None),
        (2, "row.unexpected_keys: ['surname']"),
        (3, "row.nested_value: contract columns hold scalars"),
        (4, "row.unparseable: not JSON (Expecting value)"),
        (5, "row.unparseable: a JSON line must be an object"),
        (6, "row.blank_line"),
        (7, None),
        (8, None),
    ]
    assert records[0].fields[:4] == ["R1", "0123456789", "O'Brien", None]
    assert records[0].fields[5] == "2"  # a JSON number lands as its text
    assert records[6].fields[:3] == ["R7", None, "Ng"] and records[6].fields[5] is None
    assert records[7].fields[5] == "true"  # and a boolean as its JSON text


def test_file_checks_reject_with_a_named_rule(tmp_path):
    contract = source_contract("gp_registrations")
    names = contract.column_names
    header = ",".join(names)

    def rule(data: bytes, name="f.csv"):
        problem = file_problem(_scan(tmp_path, data, name), contract)
        return problem and problem[0]

    assert rule(b"") == "file.not_empty"
    assert rule((header + "\n").encode()) == "file.no_rows"
    assert rule((",".join(reversed(names)) + "\nx\n").encode()) == "file.header_order"
    assert rule((",".join(names[:-1]) + "\nx\n").encode()) == "file.missing_column"
    assert rule((header + ",extra\nx\n").encode()) == "file.extra_column"
    assert rule(b"a,b\n1,2\n") == "file.header"
    assert rule((header + "\nrow\n").encode()) is None
    assert rule(gzip.compress((header + "\nrow\n").encode()), "f.csv.gz") is None
    assert rule(gzip.compress((header + "\nrow\n" * 50).encode())[:40], "f.csv.gz") == "file.truncated"
    assert rule(b"plain text", "f.csv.gz") == "file.compression"


def test_a_wrong_encoding_names_the_first_bad_line(tmp_path):
    contract = source_contract("gp_registrations")
    header = ",".join(contract.column_names)
    latin1 = (
        header + "\nR1,,Ng,Mei,2001-01-01,2,,Y02101,2020-01-01,,\nR2,,Nu\xf1ez,Ana,2001-01-01,2,,Y02101,2020-01-01,,\n"
    )
    rule, reason, line = file_problem(_scan(tmp_path, latin1.encode("latin-1")), contract)
    assert (rule, line) == ("file.encoding", 3)
    assert "Nu" not in reason  # the message names the line, never the value


def test_a_header_without_names_is_described_by_position_only(tmp_path):
    contract = source_contract("gp_registrations")
    # A file delivered without its header: its first line is a person's record.
    data = b"R1,9990000026,Smith,Ann,2001-01-01,2,LK1 1AA,Y02101,2020-01-01\n"
    rule, reason, _ = file_problem(_scan(tmp_path, data), contract)
    assert rule == "file.header"
    assert "Smith" not in reason and "9990000026" not in reason
    assert "header missing" in reason


def test_scan_counts_lines_hashes_bytes_and_sees_a_bom(tmp_path):
    assert _scan(tmp_path, b"h\r\na\r\nb\r\n").lines == 3
    assert _scan(tmp_path, b"h\na\nb").lines == 3
    bom = _scan(tmp_path, b"\xef\xbb\xbfh\na\n")
    assert (bom.header, bom.bom) == ("h", True)
    packed = gzip.compress(b"h\na\n")
    scan = _scan(tmp_path, packed, "f.csv.gz")
    assert (scan.lines, scan.size, scan.text_size) == (2, len(packed), 4)
    import hashlib

    assert scan.sha256 == hashlib.sha256(packed).hexdigest()  # the file as delivered, not its contents


def test_delivery_date_comes_from_the_folder_or_else_the_file_name():
    assert delivery_date(["2026-11-01", "gp.csv"]) == "2026-11-01"
    assert delivery_date(["20261101", "gp.csv"]) == "2026-11-01"
    assert delivery_date(["extra", "gp_2026-10-31.csv"]) == "2026-10-31"
    assert delivery_date(["gp_20261031.csv.gz"]) == "2026-10-31"
    assert delivery_date(["gp.csv"]) is None
    assert delivery_date(["latest", "gp.csv"]) is None
    assert delivery_date(["2026-02-31", "gp.csv"]) is None  # not a date


def test_the_dags_jvm_free_look_skips_only_files_the_manifest_records_for_their_source(tmp_path):
    """An hourly DAG run over an unchanged folder answers from the manifest (delta-rs, no Spark);
    a new file, changed bytes, or a file recorded only as waiting for a contract goes to Spark."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from jobs import fs
    from jobs.config import Settings
    from jobs.land import Delivered, all_recorded

    settings = Settings(home=str(tmp_path))
    folder = tmp_path / "landing" / "gp_registrations"
    folder.mkdir(parents=True)
    paths = {}
    for name in ("a", "b", "c"):
        paths[name] = folder / f"{name}_2026-01-0{len(paths) + 1}.csv"
        paths[name].write_text(f"{name}\n")
    due = {n: Delivered(str(p), "gp_registrations", "2026-01-01") for n, p in paths.items()}
    assert not all_recorded(settings, [due["a"]])  # no manifest yet

    def row(name, status, rule):
        return {"path": str(paths[name]), "sha256": fs.sha256(str(paths[name])), "status": status, "rule": rule}

    rows = [row("a", "landed", None), row("b", "rejected", "file.header"), row("c", "rejected", "file.unknown_source")]
    write_deltalake(settings.table("ops", "landing_manifest"), pa.Table.from_pylist(rows))

    assert all_recorded(settings, [due["a"], due["b"]])  # landed or rejected: both handled
    assert not all_recorded(settings, [due["a"], due["c"]])  # waited for a contract: its source must land it
    paths["a"].write_text("a, re-sent with other bytes\n")
    assert not all_recorded(settings, [due["a"]])
    assert not all_recorded(Settings(home="s3a://bucket/place"), [due["b"]])  # object stores: Spark decides


def test_files_parsed_in_worker_processes_are_parsed_as_here(tmp_path):
    """Landing parses big deliveries one file per worker process: the same rows, rejects and lines."""
    from jobs.land import Delivered, Parsers

    contract = source_contract("asc_services")
    header = "|".join(contract.column_names)
    files = []
    for i, body in enumerate(["S1|C1||O'Brien|Zoë|01/02/1940|F|LK1 1AA|HOME_CARE|01/01/2025|\n", "S2|ragged\n\n"]):
        path = tmp_path / f"asc_{i}.txt"
        path.write_text(f"{header}\n{body}", encoding="utf-8")
        files.append((Delivered(str(path), "asc_services", "2026-11-01"), scan_file(str(path))))
    with Parsers(1) as here, Parsers(2, min_bytes=0) as workers:
        in_process, in_workers = here.parse(contract, files), workers.parse(contract, files)
        assert workers._pool is not None  # it really used processes
    assert in_workers == in_process
    assert [(p.good.num_rows, p.rejects.num_rows, p.lines) for p in in_process] == [(1, 0, 1), (0, 2, 2)]
    assert in_process[0].good.column("surname").to_pylist() == ["O'Brien"]
    assert in_process[1].rejects.column("_line").to_pylist() == [2, 3]


def _fast_and_slow(tmp_path, contract, body: bytes, name="f.txt"):
    from jobs import land

    path = tmp_path / name
    path.write_bytes(body)
    args = (contract, str(path), "sha", "2026-11-01")
    return land._quote_free_csv(*args), land._parsed_in_python(*args)


def test_a_quote_free_file_parsed_by_pyarrow_lands_as_pythons_csv_parses_it(tmp_path):
    """pyarrow's CSV reader takes files that cannot be read two ways; rows, lines and rejects are csv_records'."""
    contract = source_contract("asc_services")
    header = "|".join(contract.column_names).encode()
    bodies = {
        "plain": b"S1|C1||O'Brien|Zo\xc3\xab|01/02/1940|F|LK1 1AA|HOME_CARE|01/01/2025|\n",
        "awkward values kept as text": b"S2|C2|NA|null| |01/02/1940|F| LK1 1AA |HOME_CARE|01/01/2025|0\n",
        "ragged rows and a line of spaces": b"S3|C3\nS4|C4||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025||x\n   \n"
        b"S5|C5||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\n",
        "CRLF and no final newline": b"S6|C6||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\r\nS7|C7",
    }
    for what, body in bodies.items():
        fast, slow = _fast_and_slow(tmp_path, contract, b"\xef\xbb\xbf" + header + b"\r\n" + body)
        assert fast is not None, what
        assert fast.good.to_pylist() == slow.good.to_pylist(), what
        assert fast.rejects.to_pylist() == slow.rejects.to_pylist(), what
        assert fast.lines == slow.lines, what
    fast, _ = _fast_and_slow(tmp_path, contract, header + b"\n" + bodies["ragged rows and a line of spaces"])
    assert [(r["_line"], r["_reject_reason"]) for r in fast.rejects.to_pylist()] == [
        (2, "row.ragged: 2 fields, contract has 11"),
        (3, "row.ragged: 12 fields, contract has 11"),
        (4, "row.blank_line"),
    ]


def test_a_file_pyarrow_could_read_otherwise_is_left_to_pythons_csv(tmp_path):
    contract = source_contract("asc_services")
    header = "|".join(contract.column_names).encode() + b"\n"
    row = b"S1|C1||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\n"
    for what, body in {
        "a quote": b'S1|C1||"Ng|Jo"|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\n',
        "a blank line": row + b"\n" + row,
        "a carriage return inside a line": b"S1|C1||Ng\rx|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\n",
        "a NUL": row.replace(b"Ng", b"N\x00g"),
        "a field over csv's limit": row.replace(b"Ng", b"N" * 131_073),
        "a ragged line with a field over csv's limit": row + b"S2|" + b"N" * 131_073 + b"\n",
    }.items():
        fast, slow = _fast_and_slow(tmp_path, contract, header + body)
        assert fast is None, what
        assert slow.lines >= 1, what
    gz = tmp_path / "f.txt.gz"
    gz.write_bytes(gzip.compress(header + row))
    from jobs import land

    assert land._quote_free_csv(contract, str(gz), "sha", None) is None
