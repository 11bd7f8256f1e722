from datetime import date, datetime

import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.link import SILVER_FEATURES, available_features, node_methods
from jobs.linkage.config import LinkageConfig
from jobs.linkage.features import identities, identity_features, nhs_groups, nickname_forms
from jobs.linkage.files import LinkInputError, check_sources, read_input
from jobs.linkage.ids import assign_incremental, assign_person_ids, id_history, new_person_id, with_previous
from jobs.linkage.metrics import pairwise_counts
from jobs.linkage.model import (
    blocking_candidates,
    in_dialect,
    prediction_blocks,
    small_components,
    splink_settings,
    train,
    training_sessions,
)

RECORDS = (
    "source string, record_id string, nhs_number string, family_name string, given_name string, "
    "date_of_birth date, sex string, postcode string, address string"
)


def test_identical_identity_tuples_of_a_source_collapse_but_not_across_sources(spark):
    records = spark.createDataFrame(
        [
            ("ae", "1", None, "O'BRIEN", "ZOË", date(1940, 2, 1), "F", "LS1 4AB", None),
            ("ae", "2", None, "O'BRIEN", "ZOË", date(1940, 2, 1), "F", "LS1 4AB", None),  # a second attendance
            ("ae", "3", None, "O'BRIEN", "ZOË", None, "F", "LS1 4AB", None),  # one field differs (a null)
            ("gp", "9", None, "O'BRIEN", "ZOË", date(1940, 2, 1), "F", "LS1 4AB", None),
        ],
        RECORDS,
    )
    counts = sorted((r.source, r.records) for r in identities(records).collect())
    assert counts == [("ae", 1), ("ae", 2), ("gp", 1)]


def test_nhs_number_links_unless_the_date_of_birth_contradicts_it(spark):
    nodes = spark.createDataFrame(
        [
            ("a", "9990000026", date(1940, 2, 1), 3),
            ("b", "9990000026", date(1940, 2, 1), 1),
            ("c", "9990000026", None, 1),  # no date of birth: nothing contradicts
            ("d", "9990000026", date(1988, 7, 30), 1),  # another person's number typed in error
            ("e", "9990000050", date(1950, 1, 1), 1),  # alone with its number
            ("f", None, date(1940, 2, 1), 1),
        ],
        "identity_id string, nhs_number string, date_of_birth date, records long",
    )
    expected = spark.createDataFrame([("a", "a"), ("b", "a"), ("c", "a")], "identity_id string, nhs_anchor string")
    assertDataFrameEqual(nhs_groups(nodes), expected)


def test_features_meet_nicknames_accents_and_hyphenated_names(spark):
    nicknames = LinkageConfig.load().nicknames
    nodes = spark.createDataFrame(
        [
            ("1", "s", None, "SMITH-JONES", "BILL", None, "U", "ls1 4ab", None),
            ("2", "s", None, "SMITH", "WILLIAM HENRY", None, "M", None, None),
            ("3", "s", None, "ZIELIŃSKI", "PAT", None, "F", None, None),
        ],
        "identity_id string, source string, nhs_number string, family_name string, given_name string, "
        "date_of_birth date, sex string, postcode string, address string",
    )
    rows = {r.unique_id: r for r in identity_features(nodes, nicknames).collect()}
    assert rows["1"].given_canon == rows["2"].given_canon == "WILLIAM"
    assert set(rows["1"].given_forms) & set(rows["2"].given_forms) == {"WILLIAM"}
    assert rows["1"].family_tokens == ["SMITH", "JONES"] and rows["2"].family_tokens == ["SMITH"]
    assert rows["3"].family_name == "ZIELINSKI"
    assert set(rows["3"].given_forms) == {"PAT", "PATRICIA", "PATRICK"}
    assert rows["1"].sex is None and rows["2"].sex == "M"  # U is unknown, not a value to agree on
    assert (rows["1"].postcode, rows["1"].postcode_sector, rows["1"].postcode_district) == ("LS1 4AB", "LS1 4", "LS1")


def test_a_short_form_of_two_names_stands_for_both():
    assert nickname_forms({"PATRICK": ("PAT",), "PATRICIA": ("PAT", "TRISH")}) == {
        "PAT": ["PATRICIA", "PATRICK"],
        "TRISH": ["PATRICIA"],
    }


CLUSTERED = "source string, record_id string, cluster_id string"
PREVIOUS = "source string, record_id string, person_id string"


def test_a_rerun_keeps_every_person_id_and_records_no_history(spark):
    clustered = spark.createDataFrame([("gp", "1", "c1"), ("ae", "2", "c1"), ("ae", "3", "c2")], CLUSTERED)
    first = assign_person_ids(clustered, None, "run-1")
    previous = first.select("source", "record_id", "person_id")
    again = assign_person_ids(
        spark.createDataFrame([("gp", "1", "x"), ("ae", "2", "x"), ("ae", "3", "y")], CLUSTERED), previous, "run-2"
    )
    assertDataFrameEqual(again.select("source", "record_id", "person_id"), previous)
    assert id_history(again, "run-2", datetime(2026, 11, 26)).count() == 0


def test_a_first_link_names_each_person_as_the_inheritance_rules_name_a_new_one(spark):
    clustered = spark.createDataFrame([("gp", "1", "c1"), ("ae", "2", "c1"), ("ae", "3", "c2")], CLUSTERED)
    first = assign_person_ids(clustered, None, "run-1")
    nobody = spark.createDataFrame([], PREVIOUS)
    assertDataFrameEqual(first, assign_person_ids(clustered, nobody, "run-1").select(*first.columns))
    ids = {r.record_id: (r.person_id, r.previous_id) for r in first.collect()}
    named = spark.range(1).select(new_person_id(F.lit("ae:2")), new_person_id(F.lit("ae:3"))).first()
    assert ids == {"1": (named[0], None), "2": (named[0], None), "3": (named[1], None)}


def test_new_records_join_their_person_and_new_people_get_new_ids(spark):
    previous = spark.createDataFrame([("gp", "1", "P-old"), ("ae", "2", "P-old")], PREVIOUS)
    clustered = spark.createDataFrame(
        [("gp", "1", "c1"), ("ae", "2", "c1"), ("asc", "7", "c1"), ("asc", "8", "c2")], CLUSTERED
    )
    ids = {r.record_id: r.person_id for r in assign_person_ids(clustered, previous, "run-2").collect()}
    assert ids["1"] == ids["2"] == ids["7"] == "P-old"
    spark_hash = spark.range(1).select(new_person_id(F.lit("asc:8")))
    assert ids["8"] == spark_hash.first()[0] != "P-old"


def test_merges_keep_the_larger_persons_id_and_splits_keep_the_larger_part(spark):
    previous = spark.createDataFrame(
        [
            ("gp", "1", "P-big"),
            ("gp", "2", "P-big"),
            ("ae", "3", "P-small"),  # new evidence: the same person as P-big
            ("asc", "4", "P-split"),
            ("asc", "5", "P-split"),
            ("asc", "6", "P-split"),  # new evidence: someone else
        ],
        PREVIOUS,
    )
    clustered = spark.createDataFrame(
        [("gp", "1", "m"), ("gp", "2", "m"), ("ae", "3", "m"), ("asc", "4", "s"), ("asc", "5", "s"), ("asc", "6", "t")],
        CLUSTERED,
    )
    assigned = assign_person_ids(clustered, previous, "run-2")
    ids = {r.record_id: r.person_id for r in assigned.collect()}
    assert ids["1"] == ids["2"] == ids["3"] == "P-big"
    assert ids["4"] == ids["5"] == "P-split" != ids["6"]
    history = {
        (r.old_person_id, r.reason, r.records): r.new_person_id
        for r in id_history(assigned, "run-2", datetime(2026, 11, 26)).collect()
    }
    assert history == {("P-small", "merge", 1): "P-big", ("P-split", "split", 1): ids["6"]}


def test_a_person_whose_part_joins_someone_keeping_their_id_keeps_its_id_on_what_is_left(spark):
    # X's records part: x2 is now Y's (a tie, which sends X to Y's cluster first, and Y brings it more).
    previous = spark.createDataFrame(
        [("gp", "x1", "X"), ("ae", "x2", "X"), ("gp", "y1", "Y"), ("ae", "y2", "Y")], PREVIOUS
    )
    clustered = spark.createDataFrame(
        [("gp", "x1", "c-x"), ("ae", "x2", "c-a"), ("gp", "y1", "c-a"), ("ae", "y2", "c-a")], CLUSTERED
    )
    assigned = assign_person_ids(clustered, previous, "run-2")
    ids = {r.record_id: r.person_id for r in assigned.collect()}
    assert ids == {"x1": "X", "x2": "Y", "y1": "Y", "y2": "Y"}
    history = [
        (r.old_person_id, r.new_person_id, r.reason, r.records)
        for r in id_history(assigned, "run-2", datetime(2026, 12, 4)).collect()
    ]
    assert history == [("X", "Y", "split", 1)]
    incremental = assign_incremental(with_previous(clustered, previous), previous, "run-2")
    assert {r.record_id: r.person_id for r in incremental.collect()} == ids


def test_a_split_never_reuses_an_id_already_given_out(spark):
    # P-a was once named after asc:1; asc:1 now stands alone, the larger part keeps P-a.
    anchor_id = spark.range(1).select(new_person_id(F.lit("asc:1")))
    old = anchor_id.first()[0]
    previous = spark.createDataFrame([("asc", "1", old), ("asc", "2", old), ("asc", "3", old)], PREVIOUS)
    clustered = spark.createDataFrame([("asc", "1", "lone"), ("asc", "2", "pair"), ("asc", "3", "pair")], CLUSTERED)
    ids = {r.record_id: r.person_id for r in assign_person_ids(clustered, previous, "run-9").collect()}
    assert ids["2"] == ids["3"] == old
    assert ids["1"] != old
    # A delivery's clusters are named on the driver, by the same rules.
    incremental = assign_incremental(with_previous(clustered, previous), previous, "run-9")
    assert {r.record_id: r.person_id for r in incremental.collect()} == ids


def test_an_incremental_links_ids_are_the_ids_the_full_rules_give(spark):
    # An incremental link's clusters: person:<id> for what the delivery left alone, roots of its graph otherwise.
    previous = spark.createDataFrame(
        [
            ("gp", "a1", "A"),
            ("ae", "a2", "A"),  # untouched
            ("gp", "b1", "B"),  # gains a new record of the same identity
            ("gp", "c1", "C"),
            ("gp", "c2", "C"),
            ("ae", "c3", "C"),  # c3 re-sent with a new identity: someone new
            ("gp", "d1", "D"),
            ("ae", "e1", "E"),
            ("ae", "e2", "E"),  # both re-sent with D's identity tuple: E brings person:D more records than D
            ("gp", "f1", "F"),
            ("ae", "f2", "F"),
            ("asc", "f3", "F"),  # f2 and f3 re-sent, now someone else: F's larger part leaves person:F
            ("gp", "g1", "G"),
            ("gp", "g2", "G"),
            ("ae", "h1", "H"),  # a new identity shows G and H are one person
        ],
        PREVIOUS,
    )
    clustered = spark.createDataFrame(
        [
            ("gp", "a1", "person:A"),
            ("ae", "a2", "person:A"),
            ("gp", "b1", "person:B"),
            ("asc", "b9", "person:B"),
            ("gp", "c1", "person:C"),
            ("gp", "c2", "person:C"),
            ("ae", "c3", "0c3"),
            ("gp", "d1", "person:D"),
            ("ae", "e1", "person:D"),
            ("ae", "e2", "person:D"),
            ("gp", "f1", "person:F"),
            ("ae", "f2", "0f"),
            ("asc", "f3", "0f"),
            ("gp", "g1", "0gh"),
            ("gp", "g2", "0gh"),
            ("ae", "h1", "0gh"),
            ("asc", "n1", "0gh"),
            ("asc", "new", "0new"),
        ],
        CLUSTERED,
    )
    full = assign_person_ids(clustered, previous, "run-2").select("source", "record_id", "person_id", "previous_id")
    incremental = assign_incremental(with_previous(clustered, previous), previous, "run-2")
    assertDataFrameEqual(incremental.select(*full.columns), full)
    ids = {r.record_id: r.person_id for r in full.collect()}
    assert ids["a1"] == ids["a2"] == "A" and ids["b9"] == "B" and ids["c1"] == "C"
    assert ids["d1"] == ids["e1"] == "E" and ids["f2"] == "F" != ids["f1"] and ids["n1"] == "G"
    assert ids["c3"] not in set(ids.values()) - {ids["c3"]} and ids["new"] not in "ABCDEFGH"


def test_methods_say_how_each_identity_was_linked(spark):
    nodes = spark.createDataFrame(
        [("n1", 1), ("n2", 1), ("p1", 1), ("p2", 1), ("same", 4), ("alone", 1), ("untouched", 1)],
        "identity_id string, records long",
    )
    nhs = spark.createDataFrame([("n1", "n1"), ("n2", "n1")], "identity_id string, nhs_anchor string")
    scored = spark.createDataFrame(
        [("p1", "p2", 0.999), ("p1", "n1", 0.995), ("alone", "p2", 0.3)],
        "unique_id_l string, unique_id_r string, match_probability double",
    )
    expected = spark.createDataFrame(
        [
            ("n1", "nhs_number", 1.0),
            ("n2", "nhs_number", 1.0),
            ("p1", "probabilistic", 0.999),
            ("p2", "probabilistic", 0.999),
            ("same", "same_identity", 1.0),
            ("alone", "singleton", 0.7),
            ("untouched", "singleton", 1.0),
        ],
        "identity_id string, method string, match_probability double",
    )
    assertDataFrameEqual(node_methods(nodes, nhs, scored, 0.99), expected, rtol=1e-9)


def test_pairwise_counts_charge_a_false_match_to_both_groups():
    # Person X holds truth t1 (two units, group F) and one unit of t2 (group M); t2's other unit is alone in Y.
    units = pd.DataFrame(
        [("X", "t1", "F", 2), ("X", "t2", "M", 1), ("Y", "t2", "M", 1)],
        columns=["person_id", "truth_id", "sex", "n"],
    )
    counts = pairwise_counts(units, "sex")
    # F: 1 true pair found; 3 linked pairs touch F (t1-t1, t1-t2, t1-t2); 1 true pair exists.
    assert counts.loc["F"].to_dict() == {"tp": 1.0, "predicted": 3.0, "actual": 1.0}
    # M: no true pair found; 2 linked pairs touch M; t2's one true pair was missed.
    assert counts.loc["M"].to_dict() == {"tp": 0.0, "predicted": 2.0, "actual": 1.0}


def _write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("content", "line", "rule"),
    [
        ("nhs_number,given_name\n9990000026,ANN\n", 1, "link.no_record_id"),
        ("record_id,given_name\nr1,ANN\nr2,BOB\nr1,CAT\n", 4, "link.duplicate_record_id"),
        ("record_id,given_name\nr1,ANN\n,BOB\n", 3, "link.missing_record_id"),
        ("record_id,given_name\nr1,ANN,EXTRA\n", 2, "link.ragged_row"),
        ("", 1, "link.no_header"),
        (b"record_id,given_name\nr1,Zo\xeb\n", None, "link.unreadable"),  # Latin-1, not UTF-8
    ],
)
def test_bad_input_names_file_line_and_rule_without_values(tmp_path, content, line, rule):
    path = _write(tmp_path, "council.csv", content)
    with pytest.raises(LinkInputError) as caught:
        read_input(path)
    assert (caught.value.path, caught.value.line, caught.value.rule) == (path, line, rule)
    assert str(path) in str(caught.value) and rule in str(caught.value)
    assert "ANN" not in str(caught.value) and "CAT" not in str(caught.value)


def test_a_missing_file_is_unreadable_and_two_files_may_not_share_a_stem(tmp_path):
    with pytest.raises(LinkInputError, match="link.unreadable"):
        read_input(tmp_path / "absent.csv")
    (tmp_path / "b").mkdir()
    one = read_input(_write(tmp_path, "gp.csv", "record_id\n1\n"))
    two = read_input(_write(tmp_path / "b", "gp.csv", "record_id\n1\n"))
    with pytest.raises(LinkInputError, match="link.duplicate_source"):
        check_sources([one, two])


def test_input_keeps_only_known_columns_and_blank_values_become_null(tmp_path):
    path = _write(tmp_path, "asc.csv", "\ufeffRecord_ID,Given_Name,shoe_size\n r1 ,  ,9\n")
    read = read_input(path)
    assert (read.source, read.columns, read.rows) == (
        "asc",
        ["record_id", "given_name"],
        [{"record_id": "r1", "given_name": None}],
    )


def test_training_starts_from_shared_nhs_numbers_and_falls_back_only_for_what_it_cannot_estimate():
    config = LinkageConfig.load()
    with_nhs = available_features(SILVER_FEATURES)
    # NHS number: every comparison but its own; date of birth and family name: the NHS number's.
    # Nothing left for full name or postcode blocks, whose namesakes at one address would bias m.
    assert training_sessions(config, with_nhs) == [("nhs_number",), ("dob", "family_phon")]
    without_nhs = available_features(SILVER_FEATURES - {"nhs_number"})
    assert training_sessions(config, without_nhs) == [
        ("dob", "family_phon"),
        ("dob", "given_canon"),
        ("family_name", "given_name"),
    ]


class _Model:
    """Stands in for Splink's model settings: what EM sessions have estimated, in order."""

    def __init__(self, estimated=()):
        self.estimated = list(estimated)

    def copy(self):
        return _Model(self.estimated)


class _Linker:
    """A linker whose EM session on one block fails as Splink 5 does when an m probability underflows,
    after editing the model in place as a real session does."""

    def __init__(self, failing_session, error="m_probability value 2.5e-314 is below the minimum allowed value"):
        self._settings_obj = type("Settings", (), {})()
        self._settings_obj.core_model_settings = _Model()
        self.training = self
        self.failing_session, self.error, self.sessions = failing_session, error, 0

    def estimate_probability_two_random_records_match(self, *args, **kwargs):
        pass

    def estimate_u_using_random_sampling(self, *args, **kwargs):
        pass

    def estimate_parameters_using_expectation_maximisation(self, block):
        self._settings_obj.core_model_settings.estimated.append(self.sessions)
        self.sessions += 1
        if self.sessions - 1 == self.failing_session:
            raise ValueError(self.error)


def test_an_em_session_that_underflows_is_dropped_whole_and_training_goes_on(caplog):
    config = LinkageConfig.load()
    features = available_features(SILVER_FEATURES)
    sessions = training_sessions(config, features)
    assert sessions[0] == ("nhs_number",) and len(sessions) > 1
    linker = _Linker(failing_session=0)
    train(linker, config, features)
    # The failed first session left nothing behind; every later one ran and was kept.
    assert linker.sessions == len(sessions)
    assert linker._settings_obj.core_model_settings.estimated == list(range(1, len(sessions)))
    assert "underflow" in caplog.text and "nhs_number" in caplog.text
    with pytest.raises(ValueError, match="another problem"):
        train(_Linker(failing_session=0, error="another problem"), config, features)


def test_date_of_birth_disagreements_carry_the_configured_m_and_em_may_not_move_it():
    config = LinkageConfig.load()
    settings = splink_settings(config).get_settings("spark").as_dict()
    dob = next(c for c in settings["comparisons"] if c["output_column_name"] == "date_of_birth")
    fixed = {
        level["label_for_charts"]: level["m_probability"]
        for level in dob["comparison_levels"]
        if level.get("fix_m_probability")
    }
    assert (
        fixed
        == config.fixed_m["date_of_birth"]
        == {"one character differs": 0.005, "same year": 0.001, "all other": 0.001}
    )


def test_a_deliverys_graph_clusters_transitively_under_its_smallest_node():
    edges = [("n2", "person:P9"), ("n1", "n2"), ("n3", "n4")]
    assert sorted(small_components(edges)) == [
        ("n1", "n1"),
        ("n2", "n1"),
        ("n3", "n3"),
        ("n4", "n3"),
        ("person:P9", "n1"),
    ]
    assert small_components([]) == []


@pytest.mark.parametrize("driver_max_edges", [10, 3, 0])
def test_persons_are_the_same_components_whether_the_driver_or_spark_clusters_them(spark, tmp_path, driver_max_edges):
    from dataclasses import replace

    from jobs.linkage.model import connected_components

    config = replace(LinkageConfig.load(), driver_clustering_max_edges=driver_max_edges)
    nodes = spark.createDataFrame([(n,) for n in ["a", "b", "c", "d", "e", "f"]], "unique_id string")
    edges = spark.createDataFrame([("b", "c"), ("c", "a"), ("d", "e")], "unique_id_l string, unique_id_r string")
    clusters = connected_components(spark, nodes, edges, str(tmp_path), config).collect()
    members: dict[str, set[str]] = {}
    for row in clusters:
        members.setdefault(row.cluster_id, set()).add(row.unique_id)
    # Three edges: the driver takes them at 10 and 3, Splink's iterative clustering on Spark at 0.
    assert sorted(map(sorted, members.values())) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert len(clusters) == 6


def _blocks(available: set[str]) -> list[str]:
    settings = splink_settings(LinkageConfig.load(), available, dialect="duckdb")
    return [r.get_blocking_rule("duckdb").blocking_rule_sql for r in settings.blocking_rules_to_generate_predictions]


def test_a_name_is_never_a_block_alone_unless_the_files_carry_nothing_else():
    # A name alone blocks thousands of namesakes together: pairs grow with the square of the place.
    silver = _blocks(available_features(SILVER_FEATURES))
    assert silver and all("dob" in sql or "postcode" in sql or "nhs_number" in sql for sql in silver), silver
    assert any("family_phon" in sql and "dob_month" in sql and "dob_day" in sql for sql in silver)
    # A new family name (marriage) at the same address still meets its old records.
    assert any("postcode" in sql and "dob_year" in sql and "family_phon" not in sql for sql in silver), silver
    names_only = _blocks(available_features({"given_name", "family_name"}))
    assert names_only == ['(l."family_phon" = r."family_phon") AND (l."given_canon" = r."given_canon")']


def test_a_date_of_birth_is_never_a_block_alone_unless_the_files_carry_no_name():
    # About 27 people share each birthday in a city of 1,000,000: [dob] alone makes pairs that grow
    # with the square of the place, and so would EM's training on it.
    alone = 'l."dob" = r."dob"'
    full = available_features(SILVER_FEATURES)
    blocks = _blocks(full)
    assert alone not in blocks
    assert all(rule != ("dob",) for rule in training_sessions(LinkageConfig.load(), full))
    # A new family name still meets its old records on the same date of birth, and so does a nickname.
    assert '(l."dob" = r."dob") AND (l."given_canon" = r."given_canon")' in blocks
    assert '(l."dob" = r."dob") AND (l."family_phon" = r."family_phon")' in blocks
    # Files with a date of birth and sex, nothing else: the date of birth is all there is to block on.
    assert _blocks(available_features({"date_of_birth", "sex"})) == [alone]


def test_a_probability_that_differs_only_in_its_last_bits_is_stored_the_same(spark):
    """EM's sums may be added in another order on a re-link: the stored probability must not move."""
    nodes = spark.createDataFrame([("a", 1), ("b", 1), ("c", 1), ("d", 1)], "identity_id string, records long")
    nhs = spark.createDataFrame([], "identity_id string, nhs_anchor string")
    p = 0.9987654321012345
    scored = spark.createDataFrame(
        [("a", "b", p), ("c", "d", p + 4e-16)], "unique_id_l string, unique_id_r string, match_probability double"
    )
    stored = {r.identity_id: r.match_probability for r in node_methods(nodes, nhs, scored, 0.99).collect()}
    assert stored["a"] == stored["c"] == 0.998765432


def test_a_models_blocking_rules_are_read_back_as_their_columns_and_anything_else_keeps_everyone():
    model = splink_settings(LinkageConfig.load()).get_settings("spark").as_dict()
    assert prediction_blocks(model) == [tuple(rule) for rule in LinkageConfig.load().blocking_rules]
    fuzzy = {"blocking_rules_to_generate_predictions": [{"blocking_rule": "levenshtein(l.a, r.a) <= 1"}]}
    assert prediction_blocks(fuzzy) is None
    crossed = {"blocking_rules_to_generate_predictions": [{"blocking_rule": "l.`a` = r.`b`"}]}
    assert prediction_blocks(crossed) is None


def test_a_model_moves_between_engines_and_back_unchanged():
    spark_model = splink_settings(LinkageConfig.load()).get_settings("spark").as_dict()
    duckdb_model = splink_settings(LinkageConfig.load(), dialect="duckdb").get_settings("duckdb").as_dict()

    def levels(model: dict) -> list[str]:
        return [level["sql_condition"] for c in model["comparisons"] for level in c["comparison_levels"]]

    # What the DuckDB engine is given is what Splink itself writes for DuckDB, function names included.
    assert levels(in_dialect(spark_model, "duckdb")) == levels(duckdb_model)
    assert any("jaro_winkler_similarity(" in sql for sql in levels(duckdb_model))
    # A model DuckDB trained is kept in Spark's dialect: its levels and its blocking rules.
    kept = in_dialect(duckdb_model, "spark")
    assert kept["sql_dialect"] == "spark" and levels(kept) == levels(spark_model)
    assert [r["blocking_rule"] for r in kept["blocking_rules_to_generate_predictions"]] == [
        r["blocking_rule"] for r in spark_model["blocking_rules_to_generate_predictions"]
    ]
    assert in_dialect(in_dialect(spark_model, "duckdb"), "spark") == spark_model
    # Either dialect's rules read back as their columns (DuckDB quotes with ", Spark with `).
    assert prediction_blocks(duckdb_model) == prediction_blocks(spark_model) is not None


@pytest.mark.parametrize(
    ("env", "engine"),
    [
        ({}, "duckdb"),
        ({"PLACELAKE_SPARK_MASTER": "local[2]"}, "duckdb"),
        ({"PLACELAKE_SPARK_MASTER": "spark://127.0.0.1:7077"}, "spark"),
        ({"PLACELAKE_SPARK_MASTER": "yarn"}, "spark"),
        ({"PLACELAKE_LINK_ENGINE": "spark"}, "spark"),
        ({"PLACELAKE_LINK_ENGINE": "duckdb", "PLACELAKE_SPARK_MASTER": "spark://127.0.0.1:7077"}, "duckdb"),
    ],
)
def test_splink_runs_in_process_on_a_local_spark_and_on_spark_on_a_cluster(env, engine):
    from jobs.config import Settings

    assert Settings.from_env({"PLACELAKE_HOME": "/tmp/x", **env}).link_engine == engine


def test_an_unknown_link_engine_is_refused_naming_the_setting():
    from jobs.config import Settings

    with pytest.raises(ValueError, match="PLACELAKE_LINK_ENGINE='pandas'"):
        Settings.from_env({"PLACELAKE_HOME": "/tmp/x", "PLACELAKE_LINK_ENGINE": "pandas"})


def test_only_identities_sharing_every_column_of_some_rule_with_a_new_one_are_candidates(spark):
    schema = "unique_id string, dob string, given_canon string, nhs_number string"
    new = spark.createDataFrame([("n1", "1940-02-01", "ANN", None), ("n2", None, "BOB", "9990000026")], schema)
    existing = spark.createDataFrame(
        [
            ("a", "1940-02-01", "ANN", None),  # dob and name
            ("b", "1940-02-01", "JOAN", None),  # dob only: no rule is the dob alone
            ("c", None, "BOB", None),  # a null never equals: n2's missing dob blocks nothing
            ("d", "1999-09-09", "ZED", "9990000026"),  # the NHS number
            ("e", "1940-02-01", "ANN", "9990000026"),  # both rules: once
        ],
        schema,
    )
    blocks = [("dob", "given_canon"), ("nhs_number",)]
    assert sorted(r.unique_id for r in blocking_candidates(existing, new, blocks).collect()) == ["a", "d", "e"]
    assert blocking_candidates(existing, new, None).count() == 5


def test_the_build_dag_relinks_every_record_only_when_a_run_asks(monkeypatch):
    import importlib.util

    from jobs import pipeline
    from jobs.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("placelake_dag_for_link_test", REPO_ROOT / "dags" / "placelake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.placelake_dag.params["relink"] is False  # a scheduled run links what changed
    asked = []
    monkeypatch.setattr(pipeline, "run_link", lambda run_id, relink=False: asked.append((run_id, relink)))
    link_task = module.placelake_dag.get_task("link").python_callable
    link_task(run_id="scheduled", params={"relink": False})
    link_task(run_id="manual", params={"relink": True})
    assert asked == [("scheduled", False), ("manual", True)]
