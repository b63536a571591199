"""Folders of a lakehouse home, readable by their owner only (no Dagster: Glue-safe).

A local lakehouse holds the org's names and emails (the warehouse, the dbt database, run logs,
alerts): every folder the pipeline creates for it is created with mode 0700, whatever the
umask. A folder that already exists is left as its owner set it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o700


def private_dir(path: Path | str) -> Path:
    """Create `path` and its missing parents with mode 0700; return it."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_MODE)
        except FileExistsError:  # made by another process meanwhile: leave its mode alone
            continue
        os.chmod(folder, PRIVATE_MODE)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        path.mkdir()  # raises FileExistsError naming the file that stands in the way
    return path
