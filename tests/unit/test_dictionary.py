"""The data dictionary: generated from contracts, every column described, offline HTML."""

from __future__ import annotations

import re
from pathlib import Path

from jobs.config import Settings
from jobs.dictionary import (
    all_contracts,
    dictionary_entries,
    render_html,
    render_markdown,
    write_dictionary,
)

SMALL = Path(__file__).parent / "dictionary_schemas"


def _entries():
    return {(e.layer, e.name): e for e in dictionary_entries(all_contracts(SMALL))}


def test_every_table_of_every_layer_is_in_the_dictionary_gold_first():
    entries = dictionary_entries(all_contracts(SMALL))
    assert [(e.layer, e.name) for e in entries] == [
        ("gold", "visit_month"),
        ("silver", "visit"),
        ("source", "clinic_visits"),
    ]
    gold = entries[0]
    assert gold.grain == "One row per clinic per month."
    assert gold.key == ("clinic", "month")
    assert gold.contract_file == "tests/unit/dictionary_schemas/gold/visit_month.yaml"


def test_where_a_column_came_from():
    entries = _entries()
    gold = {c.name: c for c in entries[("gold", "visit_month")].columns}
    assert gold["clinic"].origin == "silver.visit"  # carried through from the layer below
    assert gold["month"].origin == "derived in this layer (see the description)"
    assert gold["visits"].origin == "count of silver.visit rows"  # the contract's own `from:`
    silver = {c.name: c for c in entries[("silver", "visit")].columns}
    assert silver["nhs_number"].origin == "clinic_visits"
    source = entries[("source", "clinic_visits")]
    assert source.origin == "delivered by nhs as csv"
    assert {c.origin for c in source.columns} == {"as delivered"}


def test_markdown_lists_type_pii_and_escapes_pipes():
    md = render_markdown(dictionary_entries(all_contracts(SMALL)), "2026-11-26 10:00 UTC")
    assert "### gold.visit_month" in md
    assert "- **Grain:** One row per clinic per month." in md
    assert "| `nhs_number` | string | no | direct | NHS number \\| as recorded. | as delivered |" in md
    assert "| `clinic` | string | no | none | Clinic code. Allowed: A, B. | as delivered |" in md


def test_html_is_offline_escaped_and_links_the_report():
    page = render_html(dictionary_entries(all_contracts(SMALL)), "2026-11-26 10:00 UTC")
    assert "Visits per clinic per month &lt;with markup &amp; ampersands&gt;." in page
    assert "<with markup" not in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched from elsewhere
    assert "href='quality.html'" in page
    assert "<td class='pii-direct'>direct</td>" in page


def test_the_real_contracts_describe_every_gold_column(tmp_path):
    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    html_path, md_path = write_dictionary(settings)
    assert html_path == f"{tmp_path}/reports/dictionary.html"
    md = Path(md_path).read_text(encoding="utf-8")
    page = Path(html_path).read_text(encoding="utf-8")
    for entry in dictionary_entries(all_contracts()):
        assert f"id='{entry.layer}.{entry.name}'" in page or entry.layer == "source"
        for column in entry.columns:
            assert column.description.strip(), f"{entry.name}.{column.name} has no description"
            assert f"`{column.name}`" in md
