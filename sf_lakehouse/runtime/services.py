"""The three long-running processes of the runtime and how each starts from the one image:
`dagster code-server start` (the image's default command), `dagster-daemon run` and
`dagster-webserver`, the last two with the instance file and a workspace pointing at the code
server's gRPC port. Deploy's ECS task definitions and the local three-process test use these
commands."""

from __future__ import annotations

import shlex

from sf_lakehouse.config.runtime import CODE_SERVER_PORT, WEBSERVER_PORT
from sf_lakehouse.runtime.instance import LOCATION_NAME

DEFINITIONS_MODULE = "sf_lakehouse.definitions"
# The daemon's and the webserver's containers write these two variables' contents to
# $DAGSTER_HOME before they start (deploy sets them from `instance-config`'s rendering).
INSTANCE_VAR = "SF_LAKEHOUSE_DAGSTER_YAML"
WORKSPACE_VAR = "SF_LAKEHOUSE_WORKSPACE_YAML"


def code_server_command(host: str = "0.0.0.0", port: int = CODE_SERVER_PORT) -> list[str]:
    return [
        "dagster",
        "code-server",
        "start",
        "-h",
        host,
        "-p",
        str(port),
        "-m",
        DEFINITIONS_MODULE,
        "--location-name",
        LOCATION_NAME,
    ]


def daemon_command(workspace: str) -> list[str]:
    return ["dagster-daemon", "run", "-w", workspace]


def webserver_command(
    workspace: str, host: str = "0.0.0.0", port: int = WEBSERVER_PORT
) -> list[str]:
    return ["dagster-webserver", "-h", host, "-p", str(port), "-w", workspace]


def container_command(role: str) -> list[str]:
    """The command of one service's container in the image (DAGSTER_HOME is set there)."""
    if role == "code-server":
        return code_server_command()
    workspace = "$DAGSTER_HOME/workspace.yaml"
    start = daemon_command(workspace) if role == "daemon" else webserver_command(workspace)
    # `$DAGSTER_HOME` must expand in the shell; every other word is quoted as it is.
    words = " ".join(f'"{a}"' if "$" in a else shlex.quote(a) for a in start)
    script = (
        'mkdir -p "$DAGSTER_HOME"'
        f' && printf "%s\\n" "${INSTANCE_VAR}" > "$DAGSTER_HOME/dagster.yaml"'
        f' && printf "%s\\n" "${WORKSPACE_VAR}" > "$DAGSTER_HOME/workspace.yaml"'
        f" && exec {words}"
    )
    return ["sh", "-c", script]
