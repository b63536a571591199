"""Table layouts declared as data: partition fields with Iceberg's transform spellings, and
table properties. The raw tables' layout is here; a dimension's comes from its dbt model config
(`dbt_plugin.layout_from_model_config`), so both engines read one declaration."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)

from sf_lakehouse.lakehouse.versions import UNIQUE_KEY_PROPERTY

# Transforms are spelled as in Iceberg's own table metadata: `identity`, `day`, `bucket[16]`,
# `truncate[16]`; the parameterised ones take their width (bucket count, truncation length).
_TRANSFORMS: dict[str, Transform[Any, Any]] = {
    "identity": IdentityTransform(),
    "year": YearTransform(),
    "month": MonthTransform(),
    "day": DayTransform(),
    "hour": HourTransform(),
}
_PARAMETERISED_TRANSFORMS: dict[str, Callable[[int], Transform[Any, Any]]] = {
    "bucket": BucketTransform,
    "truncate": TruncateTransform,
}
_PARAMETERISED = re.compile(r"^(?P<name>[a-z]+)\[(?P<width>[1-9][0-9]*)\]$")


def iceberg_transform(transform: str) -> Transform[Any, Any]:
    """The pyiceberg transform of a spelling like `identity` or `bucket[16]`; a clear error for
    anything else, so a bad layout fails before a table is touched."""
    if transform in _TRANSFORMS:
        return _TRANSFORMS[transform]
    match = _PARAMETERISED.match(transform)
    if match and match["name"] in _PARAMETERISED_TRANSFORMS:
        return _PARAMETERISED_TRANSFORMS[match["name"]](int(match["width"]))
    known = [*_TRANSFORMS, *(f"{name}[N]" for name in _PARAMETERISED_TRANSFORMS)]
    raise ValueError(f"unknown partition transform {transform!r}; use one of {', '.join(known)}")


@dataclass(frozen=True)
class PartitionField:
    """One partition field: source column, transform (`identity`, `day`, `bucket[16]`,
    `truncate[16]`, ...) and the partition field's name."""

    source: str
    transform: str
    name: str

    def __post_init__(self) -> None:
        iceberg_transform(self.transform)  # fail on construction, not at the first write

    @property
    def iceberg_transform(self) -> Transform[Any, Any]:
        return iceberg_transform(self.transform)

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "transform": self.transform, "name": self.name}


@dataclass(frozen=True)
class TableLayout:
    """How a table is laid out in Iceberg; declared once, used by the IO manager and dbt."""

    partition_fields: tuple[PartitionField, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "partition_spec": [p.as_dict() for p in self.partition_fields],
            "table_properties": dict(self.properties),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TableLayout:
        spec = metadata.get("partition_spec") or []
        return cls(
            partition_fields=tuple(PartitionField(**dict(p)) for p in spec),
            properties=dict(metadata.get("table_properties") or {}),
        )


RAW_LAYOUT = TableLayout(
    partition_fields=(PartitionField("_extracted_at", "day", "_extracted_date"),),
    properties={
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "snappy",
        "write.target-file-size-bytes": str(128 * 1024 * 1024),
        UNIQUE_KEY_PROPERTY: "id,systemmodstamp",
    },
)
