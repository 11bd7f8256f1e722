from datetime import date

from pyspark.testing import assertDataFrameEqual

from jobs.link import assign_clusters, person_ids

SCHEMA = "source string, record_id string, nhs_number string, family_name string, given_name string, date_of_birth date"


def test_nhs_number_links_and_lends_itself_to_an_exact_demographic_match(spark):
    records = spark.createDataFrame(
        [
            ("gp", "1", "9990000026", "O'BRIEN", "ZOË", date(1940, 2, 1)),
            ("asc", "a", "9990000026", "OBRIEN", "ZOE", date(1940, 2, 1)),  # same NHS number, other spelling
            ("asc", "b", None, "O'BRIEN", "ZOË", date(1940, 2, 1)),  # no NHS number, exact demographics
            ("asc", "c", None, "SMITH", "ANN", date(1950, 1, 1)),  # council-only person, two records
            ("asc", "d", None, "SMITH", "ANN", date(1950, 1, 1)),
            ("asc", "e", None, None, "ANN", None),  # too little to link
        ],
        SCHEMA,
    )
    clustered = assign_clusters(records).select("source", "record_id", "method")
    expected = spark.createDataFrame(
        [
            ("gp", "1", "nhs_number"),
            ("asc", "a", "nhs_number"),
            ("asc", "b", "demographic_exact"),
            ("asc", "c", "demographic_cluster"),
            ("asc", "d", "demographic_cluster"),
            ("asc", "e", "singleton"),
        ],
        "source string, record_id string, method string",
    )
    assertDataFrameEqual(clustered, expected)

    ids = {r.record_id: r.person_id for r in person_ids(assign_clusters(records)).collect()}
    assert ids["1"] == ids["a"] == ids["b"]
    assert ids["c"] == ids["d"] != ids["1"]
    assert len({ids["e"], ids["c"], ids["1"]}) == 3


def test_a_demographic_key_shared_by_two_nhs_numbers_lends_neither(spark):
    records = spark.createDataFrame(
        [
            ("gp", "1", "9990000026", "SMITH", "JOHN", date(1960, 5, 5)),
            ("gp", "2", "9990000050", "SMITH", "JOHN", date(1960, 5, 5)),  # a different John Smith, same birthday
            ("asc", "x", None, "SMITH", "JOHN", date(1960, 5, 5)),
        ],
        SCHEMA,
    )
    methods = {r.record_id: r.method for r in assign_clusters(records).collect()}
    assert methods == {"1": "nhs_number", "2": "nhs_number", "x": "demographic_cluster"}


def test_person_ids_are_stable_across_reruns_and_row_order(spark):
    rows = [
        ("gp", "1", "9990000026", "A", "B", date(1990, 1, 1)),
        ("asc", "z", "9990000026", "A", "B", date(1990, 1, 1)),
    ]
    first = person_ids(assign_clusters(spark.createDataFrame(rows, SCHEMA))).select("source", "record_id", "person_id")
    second = person_ids(assign_clusters(spark.createDataFrame(rows[::-1], SCHEMA))).select(
        "source", "record_id", "person_id"
    )
    assertDataFrameEqual(first, second)
