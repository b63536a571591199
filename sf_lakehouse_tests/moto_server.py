"""A real moto server on 127.0.0.1 standing in for AWS (S3, Glue, IAM, Secrets Manager, Athena).

`aws_endpoint` (fixture): starts one server per test, points every AWS client at it through
AWS_ENDPOINT_URL and fake credentials, and stops it afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

AWS_REGION = "eu-west-1"


@pytest.fixture
def aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # moto reads this when the server starts: attaching AWS-managed policies needs it.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its accounts in process-wide state: start every test from an empty AWS.
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    try:
        yield endpoint
    finally:
        server.stop()
