"""Script of the AWS Glue job `sf-extraction-<env>` (a Glue 5.0 job, Python 3.11).

The same extraction as the in-process raw asset of one object (`--SF_OBJECT`): `extract_increment`,
the values that do not convert into the object's rejects table (`store_rejects`, reported through
Pipes as a warning and `rejects_table`/`rows_rejected` metadata), then one Iceberg append to the
Glue catalog with the raw table's layout. It imports no Dagster
(the job installs only `dagster-pipes`). Dagster launches it through Pipes
(`PipesGlueClient`): the run's context comes from, and the materialization metadata goes to,
the scripts bucket. `sf-lakehouse deploy` uploads this file as the job's script and the
`sf_lakehouse` package (`--extra-py-files`), the pipeline config and the object specs
(`--extra-files`, which Glue copies flat into the job's working directory) beside it.

Glue passes job arguments as `--NAME value`; this job needs `--SF_LAKEHOUSE_ENV` and
`--SF_OBJECT` (an object spec's API name), takes `--SF_LAKEHOUSE_CONFIG` (the config file Glue
copied next to the script; the object specs are the other `*.yml` files there, or its
`objects/` directory when it has one), and the Pipes bootstrap arguments Dagster adds.

The extraction appends to the raw table `sf-lakehouse deploy` created; only when that table is
missing does the job create it. It never creates or changes a database (its role may not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pipes_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values in the Pipes metadata format (timestamps need their type spelled out)."""
    converted: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            converted[name] = {
                "raw_value": value.replace(tzinfo=dt.UTC).timestamp(),
                "type": "timestamp",
            }
        elif value is None:
            converted[name] = {"raw_value": "none", "type": "text"}
        elif name == "soql":
            converted[name] = {"raw_value": f"```sql\n{value}\n```", "type": "md"}
        elif isinstance(value, list):
            converted[name] = {"raw_value": value, "type": "json"}
        else:
            converted[name] = value
    return converted


def object_specs_beside(config_path: Path) -> tuple[Any, ...]:
    """The object specs of a job run: `objects/*.yml` beside the config when that directory
    exists (a checkout), else every other `*.yml` beside it (Glue's flat `--extra-files`)."""
    from sf_lakehouse.config import ConfigError
    from sf_lakehouse.config.objects import (
        OBJECTS_DIR_NAME,
        load_object_spec,
        load_object_specs,
    )

    directory = config_path.parent / OBJECTS_DIR_NAME
    if directory.is_dir():
        return load_object_specs(directory)
    files = sorted(
        p for p in config_path.parent.glob("*.yml") if p.resolve() != config_path.resolve()
    )
    if not files:
        raise ConfigError(
            f"no object spec (*.yml) beside {config_path}; `sf-lakehouse deploy` uploads them "
            "with the job's --extra-files"
        )
    return tuple(load_object_spec(p) for p in files)


def main(argv: Sequence[str] | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one extraction; `config` replaces config/pipeline-config.yml (tests)."""
    import boto3
    from dagster_pipes import PipesS3ContextLoader, PipesS3MessageWriter, open_dagster_pipes

    from sf_lakehouse.config import load_config, resolve_settings
    from sf_lakehouse.extraction import extract_increment, store_increment
    from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog
    from sf_lakehouse.salesforce.client import connect, connection_from_environment
    from sf_lakehouse.salesforce.deadline import extraction_deadline

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="sf-extraction")
    parser.add_argument("--SF_LAKEHOUSE_ENV", required=True)
    parser.add_argument("--SF_OBJECT", required=True)
    parser.add_argument("--SF_LAKEHOUSE_CONFIG")
    args, _ = parser.parse_known_args(argv)
    objects = None
    if args.SF_LAKEHOUSE_CONFIG:
        # Inside the job the package is a zip: the config and the specs come as files.
        config_path = Path(args.SF_LAKEHOUSE_CONFIG)
        if config is None:
            config = load_config(config_path)
        objects = object_specs_beside(config_path)
    settings = resolve_settings(args.SF_LAKEHOUSE_ENV, config=config, objects=objects)
    spec = settings.object(args.SF_OBJECT)
    identifier = settings.table_identifier(spec.raw_asset_key)
    region = settings.require_aws().region
    s3 = boto3.client("s3", region_name=region)
    with open_dagster_pipes(
        params_loader=_params_loader(argv),
        context_loader=PipesS3ContextLoader(client=s3),
        message_writer=PipesS3MessageWriter(client=s3, interval=1),
    ) as pipes:
        client = connect(
            connection_from_environment(settings, os.environ), deadline=extraction_deadline(spec)
        )
        catalog = open_catalog(settings.catalog_properties())

        table = load_table_or_none(catalog, identifier)
        increment = extract_increment(
            client,
            table,
            spec,
            run_id=_run_id(pipes),
            extracted_at=dt.datetime.now(dt.UTC),
        )
        metadata = increment.metadata(client.api_usage)
        # As the in-process asset: rejects first, a type change's column, then the rows with
        # the run's watermark (sf_lakehouse.extraction.store).
        stored = store_increment(catalog, identifier, settings.raw_database, spec, increment)
        if stored.rejects_table is not None:
            metadata["rejects_table"] = stored.rejects_table
        for warning in stored.warnings:
            pipes.log.warning(warning)
        pipes.log.info(increment.summary())
        pipes.report_asset_materialization(metadata=_pipes_metadata(metadata))
        return metadata


def _run_id(pipes: Any) -> str:
    """Dagster's run id; started outside Dagster (`aws glue start-job-run`) the Pipes context
    is a no-op mock, and the Glue job run id stands in."""
    run_id = getattr(pipes, "run_id", None)
    if isinstance(run_id, str) and run_id:
        return run_id
    return os.environ.get("JOB_RUN_ID") or "glue"


def _params_loader(argv: Sequence[str]) -> Any:
    """Pipes parameters from the job's argument list (Glue passes them as `--name value`)."""
    from dagster_pipes import DAGSTER_PIPES_CLI_PARSER, PipesParamsLoader, decode_param

    parsed, _ = DAGSTER_PIPES_CLI_PARSER.parse_known_args(list(argv))

    class ArgvParamsLoader(PipesParamsLoader):
        def is_dagster_pipes_process(self) -> bool:
            return parsed.dagster_pipes_context is not None

        def load_context_params(self) -> dict[str, Any]:
            return decode_param(parsed.dagster_pipes_context)

        def load_messages_params(self) -> dict[str, Any]:
            return decode_param(parsed.dagster_pipes_messages)

    return ArgvParamsLoader()


if __name__ == "__main__":
    main()
