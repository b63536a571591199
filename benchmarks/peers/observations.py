"""The per-run observations every peer is fed, and the objects they describe.

`<observations>/run-NN/<object>.parquet` holds the rows the pipeline's raw table received in
run NN (`_run_id` = that run), renamed like the staging model: `<object>_id`, the carried and
tracked columns, `is_deleted` (objects with deletions) and `system_modstamp`. Each record
appears at most once per run (an extraction reads the latest version of each record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Json, read_json


@dataclass(frozen=True)
class ObjectInfo:
    """One object as the peers see it: its key and the columns whose change starts a version
    (the tracked fields, plus is_deleted for objects with deletions: rules 2 and 7)."""

    name: str
    key: str
    compared: tuple[str, ...]
    carried: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Json) -> ObjectInfo:
        return cls(
            name=data["name"],
            key=data["key"],
            compared=tuple(data["compared"]),
            carried=tuple(data["carried"]),
        )


def load_objects(path: Path) -> list[ObjectInfo]:
    return [ObjectInfo.from_json(item) for item in read_json(path)]


def run_dirs(observations: Path) -> list[Path]:
    """run-01, run-02, ... in order."""
    return sorted(p for p in observations.iterdir() if p.is_dir() and p.name.startswith("run-"))


def run_number(run_dir: Path) -> int:
    return int(run_dir.name.removeprefix("run-"))
