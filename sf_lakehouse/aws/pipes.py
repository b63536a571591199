"""Dagster Pipes over the scripts bucket, under one prefix (`pipes/`).

The Glue role may write to the scripts bucket only under `PIPES_PREFIX`, so both the context
Dagster injects and the messages the job writes back live there (dagster-aws's defaults put them
under a random prefix at the bucket root).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_lakehouse.config import Settings

PIPES_PREFIX = "pipes/"


def _message_reader_class() -> type:
    from dagster_aws.pipes import PipesS3MessageReader

    class PrefixedS3MessageReader(PipesS3MessageReader):
        """Messages under `pipes/<random>/`, not at the bucket root."""

        @contextmanager
        def get_params(self) -> Iterator[dict[str, Any]]:
            with super().get_params() as params:
                name = "".join(random.choices(string.ascii_letters, k=30))
                yield {**params, "key_prefix": f"{PIPES_PREFIX}{name}"}

    return PrefixedS3MessageReader


def pipes_glue_client(settings: Settings) -> Any:
    """Launches the Glue job through Dagster Pipes; context and messages travel through the
    scripts bucket under `pipes/`. (Creating boto3 clients makes no AWS call.)"""
    import boto3
    from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector

    aws = settings.require_aws()
    s3 = boto3.client("s3", region_name=aws.region)
    bucket = aws.bucket("scripts")
    return PipesGlueClient(
        client=boto3.client("glue", region_name=aws.region),
        context_injector=PipesS3ContextInjector(bucket=bucket, client=s3, key_prefix=PIPES_PREFIX),
        message_reader=_message_reader_class()(
            bucket=bucket, client=s3, interval=1, include_stdio_in_messages=False
        ),
    )
