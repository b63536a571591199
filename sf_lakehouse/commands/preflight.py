"""What `sf-lakehouse run` checks before it records a run: a mistake found here is one line and
exit 2, and no failed (or, for the next command, "killed") run is left in the instance.

- the lakehouse home can be written (not read-only, not a file, not a full disk: the home and
  every folder and file a run writes, lakehouse/writable.py), and was not moved or copied from
  elsewhere (its tables would point into the other home);
- the Salesforce connection settings are usable (an `http://` login URL is refused: credentials
  never travel in clear text; SF_LOGIN_URL/SF_CA_BUNDLE next to a Secrets Manager secret);
- the dbt models were rendered from today's object specs (a spec whose `track:` changed without
  `python -m sf_lakehouse.dbt_models` would fail deep inside the definitions).
"""

from __future__ import annotations

from collections.abc import Mapping

from sf_lakehouse.config import ConfigError, Settings


def check_connection_settings(settings: Settings, environ: Mapping[str, str]) -> None:
    """The SF_* settings that can be judged without a request."""
    from sf_lakehouse.salesforce.connection import (
        ENVIRONMENT_VARIABLES,
        check_login_url,
        normalize_domain,
        refuse_secret_overrides,
    )

    if settings.auth.source == "secretsmanager" and settings.auth.secret_id:
        refuse_secret_overrides(environ, settings.auth.secret_id, settings.environment)
    login_var = ENVIRONMENT_VARIABLES["login_url"]
    if environ.get(login_var):
        check_login_url(environ[login_var], f"login_url ({login_var})")
    domain_var = ENVIRONMENT_VARIABLES["domain"]
    if environ.get(domain_var):
        normalize_domain(environ[domain_var], f"domain ({domain_var})")


def check_models_rendered(settings: Settings) -> None:
    from sf_lakehouse.dbt_models import stale_model_files

    stale = stale_model_files(settings.objects)
    if stale:
        raise ConfigError(
            f"the dbt models differ from the object specs ({', '.join(stale[:3])}"
            f"{' ...' if len(stale) > 3 else ''}): a spec changed (track, carry, deletions) "
            "without rendering its models; run: python -m sf_lakehouse.dbt_models"
        )


def preflight(settings: Settings, environ: Mapping[str, str]) -> None:
    """Every check above, before a run is recorded (raises ConfigError subclasses: exit 2)."""
    if settings.is_local:
        from sf_lakehouse.lakehouse.home import check_home_location
        from sf_lakehouse.lakehouse.writable import check_home_writable

        check_home_writable(settings)
        check_home_location(settings.home, settings.catalog_db_path, settings.warehouse_dir)
    check_connection_settings(settings, environ)
    check_models_rendered(settings)
