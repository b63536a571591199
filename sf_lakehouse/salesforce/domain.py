"""Where a Salesforce login goes: the `domain` prefix simple-salesforce builds its login URL
from, and an explicit `https://` login URL (no Dagster: the AWS Glue job imports this module).
"""

from __future__ import annotations

import re
import urllib.parse

from sf_lakehouse.salesforce.types import SalesforceConfigError

_DOMAIN_LABELS = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def normalize_domain(value: str, source: str = "domain (SF_DOMAIN)") -> str:
    """simple-salesforce's `domain` (it logs in at `https://<domain>.salesforce.com`) from a
    prefix (`login`, `test`, `acme.my`), a host name (`login.salesforce.com`,
    `acme.my.salesforce.com`) or an `https://` URL of such a host."""
    text = value.strip()
    if "://" in text:
        parsed = urllib.parse.urlsplit(text)
        if parsed.scheme != "https":
            raise SalesforceConfigError(
                f"{source} is a {parsed.scheme}:// URL; Salesforce logins are https:// only "
                "(e.g. https://acme.my.salesforce.com, or just acme.my)"
            )
        if parsed.path.strip("/") or parsed.query or parsed.port is not None:
            raise SalesforceConfigError(
                f"{source} must be a host, not a URL with a path or port; use e.g. acme.my "
                "(for a server that is not *.salesforce.com, set login_url instead)"
            )
        text = parsed.hostname or ""
    host = text.lower().rstrip(".")
    if host.endswith(".salesforce.com"):
        host = host.removesuffix(".salesforce.com")
    if not host or host == "salesforce.com" or not _DOMAIN_LABELS.match(host):
        raise SalesforceConfigError(
            f"{source} {value!r} is not a Salesforce login domain; use login, test, your My "
            "Domain (acme.my) or its host name (acme.my.salesforce.com)"
        )
    return host


def check_login_url(value: str, source: str = "login_url (SF_LOGIN_URL)") -> str:
    """A login URL is `https://host[:port]`: an `http://` one would send the credentials in
    clear text (and simple-salesforce speaks TLS only)."""
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme != "https" or not parsed.hostname:
        shown = f"{parsed.scheme}://" if parsed.scheme else repr(value)
        raise SalesforceConfigError(
            f"{source} is {shown}...: the login URL must be https:// (credentials never travel "
            "in clear text); use the https:// URL that `sf-lakehouse emulator` prints, or leave "
            "it unset for Salesforce itself"
        )
    return value.strip().rstrip("/")
