"""Helpers for pointing HTTP clients at a running emulator (tests, demos, the pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["RedirectingAdapter", "redirecting_session"]


class RedirectingAdapter(HTTPAdapter):
    """Sends requests for one URL prefix to another (login.salesforce.com -> the emulator).

    simple-salesforce builds its login URLs from ``domain`` as ``https://<domain>.salesforce.com``;
    rewriting them at the transport keeps the library itself unmodified.
    """

    def __init__(self, source_prefix: str, target_prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_prefix = source_prefix.rstrip("/")
        self.target_prefix = target_prefix.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        if url.startswith(self.source_prefix):
            request.url = self.target_prefix + url[len(self.source_prefix) :]
        return super().send(request, *args, **kwargs)


def redirecting_session(
    base_url: str, ca_bundle: Path, login_host: str = "login.salesforce.com"
) -> requests.Session:
    """A session that trusts the emulator's CA and sends ``https://<login_host>/...`` to it.

    ``trust_env`` is off because REQUESTS_CA_BUNDLE (set on these machines) would otherwise
    override ``verify``.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_bundle)
    session.mount(f"https://{login_host}/", RedirectingAdapter(f"https://{login_host}", base_url))
    return session
