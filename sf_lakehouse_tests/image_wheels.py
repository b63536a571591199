"""The wheels the image test installs from, offline: every pin of `requirements.lock` and the
project's build requirements, as wheels, in a cache folder per version of the lock.

`make test` fills it once (`python -m sf_lakehouse_tests.image_wheels`: `pip wheel` from the
configured package index); test_image.py replays the Dockerfile with pip told to use only this
folder (PIP_NO_INDEX, PIP_FIND_LINKS), so the test downloads nothing and resolves nothing from
an index. The Dockerfile's commands are unchanged: only pip's environment differs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from sf_lakehouse.config import REPO_ROOT

LOCK_FILE = REPO_ROOT / "requirements.lock"
COMPLETE_MARKER = ".complete"


def build_requirements() -> list[str]:
    """`[build-system] requires` of pyproject.toml (pip's isolated build of the project)."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(pyproject["build-system"]["requires"])


def wheel_dir() -> Path:
    """The folder for this lock and these build requirements (XDG cache, like the Glue
    wheelhouse)."""
    digest = hashlib.sha256(LOCK_FILE.read_bytes())
    digest.update("\n".join(build_requirements()).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "sf-lakehouse" / "image-wheels" / digest.hexdigest()[:16]


def ready() -> Path | None:
    folder = wheel_dir()
    return folder if (folder / COMPLETE_MARKER).is_file() else None


def prefetch() -> Path:
    """Fill the folder once (a partial folder from an interrupted fill is started over)."""
    folder = wheel_dir()
    if ready():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "-w", str(partial), "-r", str(LOCK_FILE)],
        check=True,
    )
    download = [*pip, "download", "--quiet", "--only-binary=:all:", "-d", str(partial)]
    subprocess.run([*download, *build_requirements()], check=True)
    (partial / COMPLETE_MARKER).touch()
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


if __name__ == "__main__":
    print(prefetch())
