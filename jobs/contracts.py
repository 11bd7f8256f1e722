"""Contracts: the one declaration of every source and table (``schemas/``).

A contract drives the reader's schema, the typed output of an adapter, the
generated expectations and the data dictionary. Nothing else restates columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from jobs.config import REPO_ROOT

SCHEMAS_DIR = REPO_ROOT / "schemas"

_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "integer": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
}
PII_CLASSES = {"direct", "quasi", "none"}


class ContractError(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool
    pii: str
    description: str
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    unique: bool = False

    @property
    def spark_type(self) -> T.DataType:
        return _SPARK_TYPES[self.type]


@dataclass(frozen=True)
class Contract:
    name: str
    description: str
    grain: str
    record_key: tuple[str, ...]
    columns: tuple[Column, ...]
    layer: str = "source"
    organisation: str | None = None
    kind: str | None = None
    format: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}: no column {name!r}")

    def typed_schema(self) -> T.StructType:
        return T.StructType([T.StructField(c.name, c.spark_type, True) for c in self.columns])

    def raw_schema(self) -> T.StructType:
        """Every column as a string: how bronze keeps values exactly as delivered."""
        return T.StructType([T.StructField(c.name, T.StringType(), True) for c in self.columns])

    @property
    def direct_identifiers(self) -> list[str]:
        return [c.name for c in self.columns if c.pii == "direct"]


def _parse(path: Path, layer: str) -> Contract:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = f"{path.relative_to(REPO_ROOT)}"
    for key in ("name", "description", "grain", "record_key", "columns"):
        if key not in doc:
            raise ContractError(f"{where}: missing required key {key!r}")
    columns = []
    for i, col in enumerate(doc["columns"], start=1):
        for key in ("name", "type", "pii", "description"):
            if key not in col:
                raise ContractError(f"{where}: column {i} is missing {key!r}")
        if col["type"] not in _SPARK_TYPES:
            raise ContractError(f"{where}: column {col['name']!r} has unknown type {col['type']!r}")
        if col["pii"] not in PII_CLASSES:
            raise ContractError(f"{where}: column {col['name']!r} has unknown pii class {col['pii']!r}")
        columns.append(
            Column(
                name=col["name"],
                type=col["type"],
                required=bool(col.get("required", False)),
                pii=col["pii"],
                description=col["description"],
                allowed=tuple(str(v) for v in col["allowed"]) if "allowed" in col else None,
                pattern=col.get("pattern"),
                unique=bool(col.get("unique", False)),
            )
        )
    names = [c.name for c in columns]
    missing_keys = [k for k in doc["record_key"] if k not in names]
    if missing_keys:
        raise ContractError(f"{where}: record_key names unknown columns {missing_keys}")
    return Contract(
        name=doc["name"],
        description=doc["description"].strip(),
        grain=doc["grain"],
        record_key=tuple(doc["record_key"]),
        columns=tuple(columns),
        layer=doc.get("layer", layer),
        organisation=doc.get("organisation"),
        kind=doc.get("kind"),
        format=doc.get("format", {}),
        path=path,
    )


@cache
def source_contracts() -> tuple[Contract, ...]:
    """Every delivered source, in name order."""
    return tuple(_parse(p, "source") for p in sorted(SCHEMAS_DIR.glob("*.yaml")))


def source_contract(name: str) -> Contract:
    for c in source_contracts():
        if c.name == name:
            return c
    raise KeyError(f"no source contract named {name!r} in {SCHEMAS_DIR}")


@cache
def table_contract(layer: str, name: str) -> Contract:
    path = SCHEMAS_DIR / layer / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"no {layer} contract {name!r} ({path})")
    return _parse(path, layer)


@cache
def gold_contracts() -> tuple[Contract, ...]:
    return tuple(_parse(p, "gold") for p in sorted((SCHEMAS_DIR / "gold").glob("*.yaml")))


def conform(df: DataFrame, contract: Contract) -> DataFrame:
    """Select exactly the contract's columns in its order, failing on drift.

    An adapter or mart that stops producing a column, or produces it with
    another type, fails here rather than surfacing later in gold.
    """
    actual = {f.name: f.dataType for f in df.schema.fields}
    problems = []
    for col in contract.columns:
        if col.name not in actual:
            problems.append(f"missing column {col.name!r}")
        elif actual[col.name] != col.spark_type:
            problems.append(
                f"column {col.name!r} is {actual[col.name].simpleString()}, "
                f"contract says {col.spark_type.simpleString()}"
            )
    if problems:
        raise ContractError(f"output does not match contract {contract.layer}/{contract.name}: " + "; ".join(problems))
    return df.select(*contract.column_names)
