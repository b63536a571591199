"""Arrow helpers shared by the lakehouse modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def is_one_of(column: pa.ChunkedArray | pa.Array, values: Iterable[Any]) -> pa.ChunkedArray:
    """A mask: True where `column` holds one of `values`, False elsewhere (NULL included)."""
    value_set = pa.array(list(values), column.type)
    return pc.fill_null(pc.is_in(column, value_set=value_set), False)
