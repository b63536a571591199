"""The image without Docker: the Dockerfile's own instructions replayed into a folder outside the
repository (its paths under that folder), so a non-editable install in a clean virtual
environment must find everything it needs (config/, the dbt project, its manifest); then the
definitions load from that install and a pipeline run against the emulator succeeds.

Only the user creation is not replayed (it needs root and changes the machine). pip installs
offline, from the wheels of the lock that `make test` prepares once (image_wheels.py): the
Dockerfile's commands are the same, pip's environment (PIP_NO_INDEX, PIP_FIND_LINKS) differs.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sf_lakehouse.config import REPO_ROOT
from sf_lakehouse.runtime.services import code_server_command
from sf_lakehouse_tests import image_wheels

NOT_REPLAYED = ("groupadd ", "useradd ")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(" ", 1)[0].upper(), text.split(" ", 1)[1]) for text in logical]


def ignored(root: Path) -> list[str]:
    lines = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def replay(
    dockerfile: Path, image_root: Path, base_python: Path, pip_env: dict[str, str]
) -> dict[str, str]:
    """Run the Dockerfile into `image_root` with `pip_env` added to its commands' environment;
    returns the image's environment (paths mapped)."""
    patterns = ignored(dockerfile.parent)
    bin_dir = image_root / "base-image-bin"  # the base image's `python`
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(base_python)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    env.update(pip_env)
    image_env: dict[str, str] = {}
    workdir = image_root
    skipped = []
    for instruction, arguments in instructions(dockerfile):
        if instruction == "FROM":
            assert arguments.startswith("python:3.11-slim"), arguments
        elif instruction == "ENV":
            for pair in shlex.split(arguments):
                key, value = pair.split("=", 1)
                value = _expand(value, env)
                if value.startswith("/") and not value.startswith(str(image_root)):
                    value = str(image_root) + value
                env[key] = image_env[key] = value
        elif instruction == "WORKDIR":
            workdir = image_root / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            words = [w for w in shlex.split(arguments) if not w.startswith("--chown")]
            *sources, target = words
            destination = workdir / target
            for source in sources:
                path = dockerfile.parent / source
                if path.is_dir():
                    shutil.copytree(
                        path,
                        destination,
                        ignore=lambda _, names: [
                            n
                            for n in names
                            if any(fnmatch.fnmatch(n, p.split("/")[-1]) for p in patterns)
                        ],
                        dirs_exist_ok=True,
                    )
                else:
                    shutil.copy(path, destination)
        elif instruction == "RUN":
            if arguments.startswith(NOT_REPLAYED):
                skipped.append(arguments)
                continue
            subprocess.run(["sh", "-ec", arguments], cwd=workdir, env=env, check=True)
        elif instruction == "CMD":
            assert json.loads(arguments) == code_server_command()
        else:
            assert instruction in ("USER", "EXPOSE"), f"the replay does not know {instruction}"
    assert len(skipped) == 1, skipped  # the user creation, and nothing else
    return image_env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("image")
    assert not root.resolve().is_relative_to(REPO_ROOT)
    started = time.monotonic()
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    wheels = image_wheels.ready()
    if wheels is None:
        pytest.fail(
            f"no wheels for the image test in {image_wheels.wheel_dir()}: run `make test` (or "
            "`python -m sf_lakehouse_tests.image_wheels`) once, with the package index reachable"
        )
    pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    image_env = replay(REPO_ROOT / "Dockerfile", root, base_python, pip_env)
    print(f"image replayed in {time.monotonic() - started:.0f} s")
    return image_env


def image_process_env(image_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "DAGSTER_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    return {**env, **image_env, **extra}


def test_the_install_is_not_editable_and_ships_what_it_reads(image) -> None:
    image_env = image
    venv = Path(image_env["VIRTUAL_ENV"])
    app = Path(image_env["SF_LAKEHOUSE_PROJECT_DIR"])
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sf_lakehouse; print(sf_lakehouse.__file__)"],
        cwd=app,
        env=image_process_env(image_env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(located).is_relative_to(venv / "lib"), located  # installed, not the sources
    assert not (app / "sf_lakehouse").exists()
    assert (app / "dbt_project" / "target" / "manifest.json").is_file()
    assert not list(venv.rglob("direct_url.json")) or "editable" not in " ".join(
        p.read_text() for p in venv.rglob("sf_lakehouse-*.dist-info/direct_url.json")
    )


def test_definitions_load_and_a_run_succeeds_from_the_install(
    image, tmp_path, emulator_factory
) -> None:
    from sf_lakehouse.emulator import generate_org

    image_env = image
    venv_bin = Path(image_env["VIRTUAL_ENV"]) / "bin"
    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    history = generate_org(users=12, seed=4, start=start, days=1, accounts=4, opportunities=4)
    emulator = emulator_factory(history, now=start + dt.timedelta(days=2))
    env = image_process_env(
        image_env,
        SF_LAKEHOUSE_HOME=str(tmp_path / "lakehouse"),
        **emulator.env_vars(),
    )
    workdir = Path(image_env["SF_LAKEHOUSE_PROJECT_DIR"])
    loaded = subprocess.run(
        [
            str(venv_bin / "python"),
            "-c",
            "from sf_lakehouse.definitions import defs; d = defs(); "
            "print(sorted(k.to_user_string() for k in d.resolve_all_asset_keys()))",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "sf_curated/dim_sf_user_scd" in loaded.stdout
    run = subprocess.run(
        [str(venv_bin / "sf-lakehouse"), "run"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert " succeeded " in run.stdout, run.stdout[-2000:]
