"""The Glue job's wheelhouse: a wheel of each exact pin its packages need, in the scripts bucket.

The job installs from these wheels only (`--python-modules-installer-option --no-index`), so a
job run never reaches a package index: it gets the versions of `requirements.lock`, byte for
byte, and starts when PyPI is slow or unreachable. The pins are the dependency closure of
`GLUE_JOB_REQUIREMENTS` over the installed distributions (installed from the lock), each
checked against `requirements.lock`. The wheels are downloaded once per set of pins with
`pip download` from the configured index, for Glue 5.0's platform (CPython 3.11, manylinux
x86_64), into a cache folder, or taken from a prepared folder (`deploy --wheelhouse DIR`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, DeployError, Step
from sf_lakehouse.aws.deploy.s3 import object_step
from sf_lakehouse.config import REPO_ROOT

# What the entry point imports beyond the standard library and the sf_lakehouse zip.
GLUE_JOB_REQUIREMENTS = ("simple-salesforce", "pyiceberg[pyarrow]", "dagster-pipes", "PyYAML")
LOCK_FILE = REPO_ROOT / "requirements.lock"
# Glue 5.0: CPython 3.11 on Amazon Linux 2023, x86_64.
GLUE_PYTHON = "3.11"
GLUE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64")
# Markers evaluated as on a Glue worker.
GLUE_MARKERS = {
    "python_version": GLUE_PYTHON,
    "python_full_version": f"{GLUE_PYTHON}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
WHEELHOUSE_FOLDER = "wheelhouse"
INSTALLER_OPTION = "--no-index"


def lock_pins(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """`requirements.lock` as {canonical name: version}."""
    pins = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if "==" in text:
            name, _, version = text.partition("==")
            pins[canonicalize_name(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def glue_job_pins() -> list[str]:
    """`name==version` of every distribution the Glue job needs (see `pins_of`)."""
    return list(_pins_of(GLUE_JOB_REQUIREMENTS, LOCK_FILE))


@functools.lru_cache(maxsize=8)
def _pins_of(requirements: tuple[str, ...], lock_file: Path) -> tuple[str, ...]:
    return tuple(pins_of(requirements, lock_file))


def pins_of(requirements: Sequence[str], lock_file: Path = LOCK_FILE) -> list[str]:
    """`name==version` of every distribution `requirements` need, sorted: their closure over
    the installed distributions' metadata, markers as on Glue, each as `lock_file` pins it."""
    extras: dict[str, set[str]] = {}
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        known = extras.get(name)
        if known is not None and set(requirement.extras) <= known:
            continue
        extras[name] = (known or set()) | set(requirement.extras)
        try:
            needs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise DeployError(
                f"{name} (needed by the Glue job) is not installed; run `make install`"
            ) from None
        for text in needs:
            dependency = Requirement(text)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**GLUE_MARKERS, "extra": extra})
                for extra in ("", *sorted(extras[name]))
            ):
                pending.append(dependency)
    locked = lock_pins(lock_file)
    pins = []
    for name in sorted(extras):
        version = metadata.version(name)
        if locked.get(name) != version:
            raise DeployError(
                f"{name} {version} is installed but requirements.lock pins "
                f"{locked.get(name) or 'nothing'}; run `make install` before deploying"
            )
        pins.append(f"{name}=={version}")
    return pins


def cache_folder(pins: Iterable[str]) -> Path:
    """Where the wheels of one set of pins are kept between deploys."""
    key = hashlib.sha256("\n".join([*GLUE_PLATFORMS, *sorted(pins)]).encode()).hexdigest()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sf-lakehouse" / WHEELHOUSE_FOLDER / key[:16]


def download_wheels(pins: Sequence[str], folder: Path) -> Path:
    """`pip download` of exactly these pins (no dependencies: the pins are the closure), as
    wheels for Glue's platform, into `folder` (written aside, then renamed into place)."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    platforms = [option for platform in GLUE_PLATFORMS for option in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        GLUE_PYTHON,
        "--implementation",
        "cp",
        "--dest",
        str(partial),
        *pins,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise DeployError(
            f"cannot download the Glue job's wheels ({last}); check the package index "
            "(pip config list), or pass --wheelhouse DIR with a wheel of each pin"
        )
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def wheel_files(folder: Path, pins: Sequence[str]) -> list[Path]:
    """One wheel per pin from `folder`, in pin order; a missing pin is a `DeployError`."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        found[(str(name), str(version))] = path
    wheels, missing = [], []
    for pin in pins:
        name, _, version = pin.partition("==")
        wheel = found.get((canonicalize_name(name), version))
        if wheel is None:
            missing.append(pin)
        else:
            wheels.append(wheel)
    if missing:
        raise DeployError(
            f"wheelhouse {folder} has no wheel of {', '.join(missing)}; add them (pip download "
            "--no-deps --only-binary=:all: ...) or leave --wheelhouse out to build it"
        )
    return wheels


def prepared_wheels(ctx: DeployContext) -> list[Path]:
    """The job's wheels: from `ctx.wheelhouse` when given, else the cache (downloaded once)."""
    pins = glue_job_pins()
    if ctx.wheelhouse is not None:
        if not ctx.wheelhouse.is_dir():
            raise DeployError(f"--wheelhouse {ctx.wheelhouse} is not a folder")
        return wheel_files(ctx.wheelhouse, pins)
    folder = cache_folder(pins)
    if not folder.is_dir():
        download_wheels(pins, folder)
    return wheel_files(folder, pins)


def wheel_location(ctx: DeployContext, wheel: Path) -> str:
    scripts = ctx.aws.glue_script_location.rsplit("/", 1)[0]
    return f"{scripts}/{WHEELHOUSE_FOLDER}/{wheel.name}"


def plan_wheelhouse(ctx: DeployContext) -> Step:
    """One step for every wheel: upload those missing or changed (sha256), in one change."""
    wheels = prepared_wheels(ctx)
    ctx.wheel_locations = [wheel_location(ctx, wheel) for wheel in wheels]
    steps = [
        object_step(ctx, uri, wheel) for uri, wheel in zip(ctx.wheel_locations, wheels, strict=True)
    ]
    folder = ctx.wheel_locations[0].rsplit("/", 1)[0] + "/"
    resource = f"glue job wheelhouse {folder}"
    size = sum(wheel.stat().st_size for wheel in wheels)
    pending = [step for step in steps if step.change.action != "none"]
    summary = f"{len(wheels)} wheels, {size / 1e6:.0f} MB, the exact pins of requirements.lock"
    if not pending:
        return Step(Change(resource, "none", summary))

    def upload() -> None:
        for step in pending:
            assert step.apply is not None
            step.apply()

    action = "create" if len(pending) == len(steps) else "update"
    detail = f"upload {len(pending)} of {summary}"
    return Step(Change(resource, action, detail), upload, ("s3:PutObject",))
