"""Tags of the runs an `sf-lakehouse` command executes itself (pipeline.py sets them): which
home, which process, where the log is. The sensors read them to leave such runs to the command."""

from __future__ import annotations

from collections.abc import Mapping

LAUNCHED_BY_TAG = "sf_lakehouse/launched_by"
HOME_TAG = "sf_lakehouse/home"
PID_TAG = "sf_lakehouse/pid"
LOG_TAG = "sf_lakehouse/log"
CLI = "sf-lakehouse"


def launched_by_cli(tags: Mapping[str, str]) -> bool:
    """A run `sf-lakehouse run` (or `demo`) executed in its own process."""
    return tags.get(LAUNCHED_BY_TAG) == CLI
