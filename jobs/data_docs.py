"""GX Data Docs for every validated table, made to work offline.

Great Expectations renders a validation result to an HTML page whose styling
and scripts come from public CDNs (Bootstrap, jQuery, Font Awesome, Vega).
The report must work on a machine with no internet, and must not leak a
request to a third party when ops open it: each page is rendered with GX's
own renderer, then every external script, stylesheet and image is removed
and a small bundled stylesheet inlined. The page is static HTML: GX writes
its content server-side, the scripts only add collapsing and tooltips.

Results reach this module already reduced to counts (gate.RESULT_FORMAT):
a page carries rule names, counts and rates, never a row value.
"""

from __future__ import annotations

import html
import re
from functools import cache

from jobs import fs

# Scripts are dropped whole: without their CDN libraries they would only raise console errors.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*href=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_EXTERNAL_IMG = re.compile(r"<img\b[^>]*src=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_EXTERNAL_FORM = re.compile(r"<form\b[^>]*action=\"https?://.*?</form>", re.DOTALL | re.IGNORECASE)
_HEAD_END = re.compile(r"</head>", re.IGNORECASE)

# A few Bootstrap-like rules for the classes GX's templates use.
STYLE = """<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2327;margin:0 auto;
  max-width:1100px;padding:1rem}
a{color:#005eb8} table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border-bottom:1px solid #dde1e4;padding:.3rem .5rem;text-align:left;vertical-align:top}
.card{border:1px solid #dde1e4;border-radius:4px;margin:0 0 1rem;padding:.25rem .75rem}
.card-header{font-weight:600;border-bottom:1px solid #dde1e4;padding:.4rem 0}
.text-danger{color:#b00020} .text-success{color:#1b7e3c} .badge{padding:0 .3rem;border-radius:3px}
.badge-danger{background:#b00020;color:#fff} .badge-success{background:#1b7e3c;color:#fff}
.collapse{display:block} .navbar,.ge-footer,#sidebar{display:none}
code,pre{background:#f4f5f6;padding:0 .2rem;white-space:pre-wrap}
.placelake-note{background:#f4f5f6;border-left:4px solid #005eb8;padding:.5rem .75rem}
</style>"""


def offline(page: str, back_link: str = "../quality.html") -> str:
    """GX's page without anything fetched from the internet, with our stylesheet and a way back."""
    page = _SCRIPT.sub("", page)
    page = _EXTERNAL_FORM.sub("", page)
    page = _EXTERNAL_LINK.sub("", page)
    page = _EXTERNAL_IMG.sub("", page)
    page = _HEAD_END.sub(STYLE + "</head>", page, count=1)
    note = (
        '<p class="placelake-note">Great Expectations Data Docs, rendered offline by placelake. '
        f'<a href="{html.escape(back_link)}">Back to the quality report</a></p>'
    )
    return re.sub(r"(<body\b[^>]*>)", r"\1" + note, page, count=1, flags=re.IGNORECASE)


@cache
def _page_view():
    # One view for every page: its Jinja environment compiles GX's ~120 templates once, not per table.
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()


def render(outcome) -> str:
    """An ExpectationSuiteValidationResult as a self-contained offline HTML page."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    return offline(_page_view().render(ValidationResultsPageRenderer().render(outcome)))


def page_name(layer: str, table: str) -> str:
    return f"{layer}.{table}.html"


def write(docs_dir: str, layer: str, table: str, outcome) -> str:
    """Render and write the latest validation page of one table; returns its path."""
    path = f"{docs_dir}/{page_name(layer, table)}"
    fs.write_text(path, render(outcome))
    return path


def pages(docs_dir: str) -> list[str]:
    """The file names of the pages written so far, sorted (gold before silver, then by table)."""
    return sorted(f.path.rsplit("/", 1)[-1] for f in fs.list_files(docs_dir) if f.path.endswith(".html"))
