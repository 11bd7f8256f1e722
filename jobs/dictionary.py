"""The data dictionary: every table and column, generated from the contracts in schemas/.

Published beside the quality report (reports/dictionary.html and .md) so an
analyst can read what a column means, whether it is identifying and where it
came from, without Spark or the repository. Gold first: that is what analysts
query; silver and the delivered sources follow so lineage can be traced back.

"Where it came from" is read from a column's own ``from:`` (or ``lineage:``)
key when its contract states one; otherwise it is the same-named column one
layer down (gold from silver, silver from the delivered feeds), which is how
the adapters and marts carry columns through.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from jobs import fs
from jobs.config import Settings
from jobs.contracts import SCHEMAS_DIR, Contract, _parse

LAYERS = ("gold", "silver", "source")
_LAYER_TITLES = {
    "gold": "Gold — curated tables analysts query (pseudonymised)",
    "silver": "Silver — typed, standardised, linked (holds direct identifiers; not exposed to analysts)",
    "source": "Delivered sources — landing contracts (as delivered by each organisation)",
}
_PII_MEANING = {
    "direct": "direct identifier: stops at silver",
    "quasi": "quasi-identifier: identifying in combination",
    "none": "not identifying",
}


@dataclass(frozen=True)
class ColumnEntry:
    name: str
    type: str
    required: bool
    pii: str
    description: str
    origin: str
    allowed: tuple[str, ...] | None


@dataclass(frozen=True)
class TableEntry:
    layer: str
    name: str
    description: str
    grain: str
    key: tuple[str, ...]
    origin: str
    contract_file: str
    columns: tuple[ColumnEntry, ...]


def all_contracts(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, list[Contract]]:
    """Every contract by layer, read fresh from disk (new gold contracts appear without code changes)."""
    return {
        "gold": [_parse(p, "gold") for p in sorted((schemas_dir / "gold").glob("*.yaml"))],
        "silver": [_parse(p, "silver") for p in sorted((schemas_dir / "silver").glob("*.yaml"))],
        "source": [_parse(p, "source") for p in sorted(schemas_dir.glob("*.yaml"))],
    }


def _declared_origins(contract: Contract) -> dict[str, str]:
    """A column's own `from:`/`lineage:` key, if its contract declares one (Contract itself ignores them)."""
    if contract.path is None:
        return {}
    doc = yaml.safe_load(contract.path.read_text(encoding="utf-8")) or {}
    declared = {}
    for col in doc.get("columns", []):
        origin = col.get("from") or col.get("lineage") or col.get("derived_from")
        if origin:
            declared[col["name"]] = ", ".join(origin) if isinstance(origin, list) else str(origin)
    return declared


def _table_origin(contract: Contract, below: list[Contract]) -> str:
    if contract.layer == "source":
        fmt = contract.format.get("type", "")
        return f"delivered by {contract.organisation or 'an organisation'}" + (f" as {fmt}" if fmt else "")
    lower = "silver" if contract.layer == "gold" else "the delivered sources"
    return f"built from {lower}" + (f" ({', '.join(c.name for c in below)})" if below else "")


def _column_origin(column: str, layer: str, below: list[Contract], declared: dict[str, str]) -> str:
    if column in declared:
        return declared[column]
    if layer == "source":
        return "as delivered"
    carriers = [c.name for c in below if column in c.column_names]
    if not carriers:
        return "derived in this layer (see the description)"
    prefix = "silver." if layer == "gold" else ""
    return ", ".join(prefix + name for name in carriers)


def dictionary_entries(contracts: dict[str, list[Contract]]) -> list[TableEntry]:
    """The dictionary's content: pure, from contracts alone."""
    below_of = {"gold": contracts.get("silver", []), "silver": contracts.get("source", []), "source": []}
    entries = []
    for layer in LAYERS:
        below = below_of[layer]
        for contract in contracts.get(layer, []):
            declared = _declared_origins(contract)
            columns = tuple(
                ColumnEntry(
                    c.name,
                    c.type,
                    c.required,
                    c.pii,
                    c.description,
                    _column_origin(c.name, layer, below, declared),
                    c.allowed,
                )
                for c in contract.columns
            )
            path = contract.path
            entries.append(
                TableEntry(
                    layer=layer,
                    name=contract.name,
                    description=contract.description,
                    grain=contract.grain,
                    key=contract.record_key,
                    origin=_table_origin(contract, below if layer != "silver" else []),
                    contract_file=str(path.relative_to(SCHEMAS_DIR.parent))
                    if path and path.is_relative_to(SCHEMAS_DIR.parent)
                    else str(path),
                    columns=columns,
                )
            )
    return entries


def _qualified(entry: TableEntry) -> str:
    return f"{entry.layer}.{entry.name}" if entry.layer != "source" else entry.name


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(entries: list[TableEntry], generated: str) -> str:
    lines = [
        "# placelake data dictionary",
        "",
        f"Generated {generated} from the contracts in `schemas/`. Analysts query the gold tables "
        "(`placelake sql`, the Thrift server, or the `deltalake` package); silver and the sources are listed "
        "so every gold column can be traced to what was delivered.",
        "",
        "PII classes: " + "; ".join(f"`{k}` {v}" for k, v in _PII_MEANING.items()) + ".",
    ]
    for layer in LAYERS:
        mine = [e for e in entries if e.layer == layer]
        if not mine:
            continue
        lines += ["", f"## {_LAYER_TITLES[layer]}"]
        for e in mine:
            lines += [
                "",
                f"### {_qualified(e)}",
                "",
                _md_cell(e.description),
                "",
                f"- **Grain:** {e.grain}",
                f"- **Key:** {', '.join(e.key)}",
                f"- **Where it came from:** {e.origin}",
                f"- **Contract:** `{e.contract_file}`",
                "",
                "| column | type | required | PII | description | where it came from |",
                "|---|---|---|---|---|---|",
            ]
            for c in e.columns:
                allowed = f" Allowed: {', '.join(c.allowed)}." if c.allowed else ""
                lines.append(
                    f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {c.pii} | "
                    f"{_md_cell(c.description + allowed)} | {_md_cell(c.origin)} |"
                )
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;color:#1d1d1f;max-width:80rem;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.4rem;border-bottom:1px solid #ddd}h3{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.muted{color:#666}.pii-direct{color:#b00020;font-weight:600}.pii-quasi{color:#8a5a00}
nav a{margin-right:1rem}dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem}dt{font-weight:600}
"""


def render_html(entries: list[TableEntry], generated: str) -> str:
    """One self-contained page: no scripts, no external fonts or styles."""
    esc = html.escape
    nav = "".join(f"<a href='#{esc(_qualified(e))}'>{esc(_qualified(e))}</a>" for e in entries if e.layer == "gold")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>placelake data dictionary</title><style>{_CSS}</style></head><body>",
        "<h1>placelake data dictionary</h1>",
        f"<p class='muted'>Generated {esc(generated)} from the contracts in <code>schemas/</code>. "
        "<a href='quality.html'>Quality report</a>.</p>",
        f"<nav>Gold tables: {nav}</nav>",
        "<p>PII classes: " + "; ".join(f"<b>{k}</b> {esc(v)}" for k, v in _PII_MEANING.items()) + ".</p>",
    ]
    for layer in LAYERS:
        mine = [e for e in entries if e.layer == layer]
        if not mine:
            continue
        parts.append(f"<h2 id='layer-{layer}'>{esc(_LAYER_TITLES[layer])}</h2>")
        for e in mine:
            rows = "".join(
                f"<tr><td><code>{esc(c.name)}</code></td><td>{esc(c.type)}</td>"
                f"<td>{'yes' if c.required else 'no'}</td><td class='pii-{esc(c.pii)}'>{esc(c.pii)}</td>"
                f"<td>{esc(c.description)}"
                + (f"<br><span class='muted'>Allowed: {esc(', '.join(c.allowed))}</span>" if c.allowed else "")
                + f"</td><td>{esc(c.origin)}</td></tr>"
                for c in e.columns
            )
            parts.append(
                f"<h3 id='{esc(_qualified(e))}'>{esc(_qualified(e))}</h3><p>{esc(e.description)}</p>"
                f"<dl><dt>Grain</dt><dd>{esc(e.grain)}</dd><dt>Key</dt><dd>{esc(', '.join(e.key))}</dd>"
                f"<dt>Where it came from</dt><dd>{esc(e.origin)}</dd>"
                f"<dt>Contract</dt><dd><code>{esc(e.contract_file)}</code></dd></dl>"
                "<table><tr><th>column</th><th>type</th><th>required</th><th>PII</th><th>description</th>"
                f"<th>where it came from</th></tr>{rows}</table>"
            )
    parts.append("</body></html>")
    return "".join(parts)


def write_dictionary(settings: Settings, schemas_dir: Path = SCHEMAS_DIR) -> tuple[str, str]:
    """Write reports/dictionary.html and reports/dictionary.md; return their paths."""
    entries = dictionary_entries(all_contracts(schemas_dir))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    html_path = f"{settings.reports}/dictionary.html"
    md_path = f"{settings.reports}/dictionary.md"
    fs.write_text(html_path, render_html(entries, generated))
    fs.write_text(md_path, render_markdown(entries, generated))
    return html_path, md_path
