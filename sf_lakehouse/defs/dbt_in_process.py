"""dbt in the step's own process: dbt-core's programmatic runner (`dbtRunner`) instead of a `dbt`
subprocess, its events turned into Dagster's by dagster-dbt's own translation.

A `dbt` subprocess costs every run about 6 s before its first node: Python, dbt-core and the
adapter imported again, and the project parsed again. In the step's process dbt is already
imported (dagster-dbt imports it) and the manifest Dagster loaded is handed to dbt, so nothing is
parsed. What stays the same as dagster-dbt's subprocess (`DbtCliResource.cli`): the selection
dagster-dbt derives from the step's selected assets and checks, the target folder, and each dbt
result event read by `DbtCliEventMessage.to_default_asset_events` (materializations, check
results with their metadata); a failed node fails the step with dbt's error lines.

dbt keeps process-wide state (flags, the adapter registry, the event manager, dbt-duckdb's one
DuckDB environment); every invocation sets up the first three itself, and `_release()` closes
the DuckDB environment and the event manager's loggers afterwards, so that a second invocation in
the same process (the tests, a code server, the follow-up run of `sf-lakehouse run`) starts like
the first and the DuckDB file is not held between runs.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetExecutionContext, get_dagster_logger
from dagster_dbt import DagsterDbtCliRuntimeError, DagsterDbtTranslator, DbtProject
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest

logger = get_dagster_logger()

# dbt's console levels: what the subprocess printed (and dagster-dbt echoed) at --log-level info.
_ECHOED_LEVELS = frozenset({"info", "warn", "error"})
# How long an interrupted step waits for dbt to stop (dagster-dbt's termination timeout).
_STOP_SECONDS = 25.0
# How often a step waiting for dbt's next message looks whether dbt's thread is still alive.
_ALIVE_POLL_SECONDS = 0.5


class RunnerManifest:
    """The manifest dagster-dbt loaded, as the `Manifest` object dbtRunner takes: converted once
    per definitions (the JSON is read once, by `build_dbt_assets`), on the first in-process
    build."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self._manifest = manifest

    @cached_property
    def dbt_manifest(self) -> Manifest:
        from dbt.artifacts.schemas.manifest import WritableManifest
        from dbt.contracts.graph.manifest import Manifest
        from dbt.contracts.graph.nodes import GenericTestNode

        writable = WritableManifest.upgrade_schema_version(dict(self._manifest))
        manifest = Manifest.from_writable_manifest(writable)
        # The artifact's node union reads a generic test (not_null...) as a singular one, which
        # compiles without its arguments (`_dbt_generic_test_kwargs` is undefined): dbt's own
        # node dispatch tells them apart by `test_metadata`.
        for unique_id, node in self._manifest["nodes"].items():
            if node.get("resource_type") == "test" and "test_metadata" in node:
                manifest.nodes[unique_id] = GenericTestNode.from_dict(node)
        return manifest

    def fits(self, relation_schemas: Mapping[str, str]) -> bool:
        """The manifest's relations were rendered with these schemas (resource type -> schema,
        e.g. the run's raw and curated databases). dbt bakes `var()`s of source and profile
        schemas in at parse time: a manifest parsed with other databases must be re-parsed."""
        nodes = [
            *self._manifest.get("nodes", {}).values(),
            *self._manifest.get("sources", {}).values(),
        ]
        return all(
            node.get("schema") == relation_schemas[node.get("resource_type", "")]
            for node in nodes
            if node.get("resource_type") in relation_schemas
        )


@dataclass
class InProcessDbtBuild:
    """One dbt invocation in this process; `stream()` yields dagster-dbt's events as dbt emits
    them (dbt runs in a worker thread, its events cross a queue)."""

    args: Sequence[str]
    context: AssetExecutionContext
    target_path: Path
    project_dir: Path
    profiles_dir: Path
    target: str | None
    manifest: RunnerManifest | None
    relation_schemas: Mapping[str, str] = field(default_factory=dict)
    _errors: list[str] = field(init=False, default_factory=list)

    def _invocation(self) -> tuple[list[str], Mapping[str, Any], DagsterDbtTranslator, Any, bool]:
        """dbt's arguments, and the manifest, translator and project dagster-dbt's selection
        uses: the same helpers `DbtCliResource.cli` calls."""
        cleaned, selects, excludes = extract_runtime_selection_from_args(self.args)
        params = get_updated_cli_invocation_params_for_context(
            context=self.context,
            manifest={},
            dagster_dbt_translator=DagsterDbtTranslator(),
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project: DbtProject | None = params.dbt_project
        project_dir = Path(project.project_dir) if project is not None else self.project_dir
        # dagster-dbt copies the project to write a selectors.yml for large selections: that
        # copy must be parsed.
        same_project = project_dir.resolve() == self.project_dir.resolve()
        target = str(self.target_path)
        args = [
            *cleaned,
            *(["--target", self.target] if self.target else []),
            *params.selection_args,
            *(
                ["--indirect-selection", params.indirect_selection]
                if params.indirect_selection
                else []
            ),
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target-path",
            target,
            "--log-path",
            target,
            # Events reach Dagster through the callback (and are echoed below, as dagster-dbt
            # echoes the subprocess's); dbt.log in the target folder keeps the debug lines.
            "--log-level",
            "none",
            "--no-send-anonymous-usage-stats",
        ]
        return args, params.manifest, params.dagster_dbt_translator, project, same_project

    def stream(self) -> Iterator[Any]:
        args, manifest, translator, project, same_project = self._invocation()
        runner_manifest = None
        if self.manifest is not None and same_project and self.manifest.fits(self.relation_schemas):
            runner_manifest = self.manifest.dbt_manifest
        else:
            logger.info("dbt parses the project: the loaded manifest does not fit this run")
        # dbt's modules are imported here, in the step's thread: CPython 3.11 can fail an import
        # (its AST compile) in a new thread, and the runner thread then never reports back.
        from dbt.cli.main import dbtRunner

        events: queue.Queue[Any] = queue.Queue()
        done = object()
        outcome: list[dbtRunnerResult] = []
        crashed: list[BaseException] = []

        def invoke() -> None:
            try:
                outcome.append(
                    dbtRunner(manifest=runner_manifest, callbacks=[events.put]).invoke(args)
                )
            except BaseException as error:  # reported by the step, never a silent hang
                crashed.append(error)
            finally:
                try:
                    _release()
                finally:
                    events.put(done)

        logger.info(f"Running dbt command in process: `dbt {' '.join(args)}`.")
        worker = threading.Thread(target=invoke, name="dbt", daemon=True)
        worker.start()
        try:
            while (message := self._next(events, worker)) is not done:
                yield from self._dagster_events(message, manifest, translator, project)
        except BaseException:
            _cancel()
            worker.join(_STOP_SECONDS)
            raise
        worker.join()
        if crashed:
            raise DagsterDbtCliRuntimeError(
                description=f"dbt (in process) stopped: {type(crashed[0]).__name__}: {crashed[0]}"
            ) from crashed[0]
        self._raise_on_failure(outcome[0] if outcome else None)

    @staticmethod
    def _next(events: queue.Queue[Any], worker: threading.Thread) -> Any:
        """The runner's next message; a runner thread that died without its last message
        (it always sends one) ends the step instead of leaving it waiting."""
        while True:
            try:
                return events.get(timeout=_ALIVE_POLL_SECONDS)
            except queue.Empty:
                if not worker.is_alive() and events.empty():
                    raise DagsterDbtCliRuntimeError(
                        description="dbt (in process) ended without reporting its result"
                    ) from None

    def _dagster_events(
        self,
        message: Any,
        manifest: Mapping[str, Any],
        translator: DagsterDbtTranslator,
        project: Any,
    ) -> Iterator[Any]:
        from dbt_common.events.functions import msg_to_dict

        level = message.info.level
        if level == "error":
            self._errors.append(message.info.msg)
        if level in _ECHOED_LEVELS:
            sys.stdout.write(message.info.msg + "\n")
            sys.stdout.flush()
        event = DbtCoreCliEventMessage(raw_event=msg_to_dict(message), event_history_metadata={})
        yield from event.to_default_asset_events(
            manifest=manifest,
            dagster_dbt_translator=translator,
            context=self.context,
            target_path=self.target_path,
            project=project,
        )

    def _raise_on_failure(self, result: dbtRunnerResult | None) -> None:
        if result is not None and result.success and not self._errors:
            return
        reasons = list(self._errors)
        if result is not None and result.exception is not None:
            reasons.append(f"{type(result.exception).__name__}: {result.exception}")
        log = self.target_path / "dbt.log"
        raise DagsterDbtCliRuntimeError(
            description=(
                "dbt (in process) failed."
                + (f" dbt's debug log: {log}." if log.exists() else "")
                + ("\n\nErrors parsed from dbt logs:\n" + "\n\n".join(reasons) if reasons else "")
            )
        )


def _release() -> None:
    """What dbt leaves behind in the process after an invocation: its loggers (the dbt.log of a
    target folder about to be removed), its adapters and dbt-duckdb's DuckDB environment, which
    would keep the DuckDB file open (and locked) until the process ends."""
    from dbt.adapters.factory import reset_adapters
    from dbt_common.events.event_manager_client import cleanup_event_logger

    cleanup_event_logger()
    _close_duckdb_environment()
    reset_adapters()
    # What dbt and the lakehouse plugin opened in this thread (the catalog's SQLite connections
    # among them) is finalized here: SQLite refuses a connection closed from another thread.
    gc.collect()


def _close_duckdb_environment() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # an Athena-only installation
        return
    environment = DuckDBConnectionManager._ENV  # dbt-duckdb's one environment per process
    DuckDBConnectionManager.close_all_connections()
    if environment is not None:
        environment.close()


def _cancel() -> None:
    """The step is being interrupted: cancel dbt's open queries so its thread ends."""
    from dbt.adapters.factory import FACTORY

    for adapter in list(FACTORY.adapters.values()):
        try:
            adapter.cancel_open_connections()
        except Exception as error:  # cancelling is best effort; the step fails either way
            logger.warning(f"could not cancel dbt's queries: {type(error).__name__}")
