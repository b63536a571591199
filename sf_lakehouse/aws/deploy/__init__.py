"""`sf-lakehouse deploy`: provision one AWS environment idempotently.

First a plan is computed from the current AWS state (a list of `Change`s, each with the code
that applies it), then it is applied unless it is a dry run (or, without a terminal, unless
`--yes` was given). A second deploy plans only `none`. Secret values never reach the plan, the
output or an exception message.

One module per service: `s3` (buckets and uploads), `glue` (databases, the extraction job and
its artifacts), `iam` (the Glue role), `secrets` (the Salesforce secret and the one login),
`athena` (the workgroup), `tables` (one raw Iceberg table per object spec), `lakeformation`
(grants, when the account enforces Lake Formation); `plan` holds the plan and its errors and
`run` the order and the command.
"""

from sf_lakehouse.aws.deploy.plan import (
    AwsDeployError,
    Change,
    DeployError,
    Plan,
    Step,
    format_plan,
)
from sf_lakehouse.aws.deploy.run import (
    DEFAULT_SCRIPT_PATH,
    PACKAGE_DIR,
    apply_plan,
    aws_environments,
    deploy_settings,
    plan_deploy,
    run_deploy,
)
from sf_lakehouse.aws.deploy.secrets import (
    collect_credentials,
    masked,
    refuse_command_line_secret,
)

__all__ = [
    "DEFAULT_SCRIPT_PATH",
    "PACKAGE_DIR",
    "AwsDeployError",
    "Change",
    "DeployError",
    "Plan",
    "Step",
    "apply_plan",
    "aws_environments",
    "collect_credentials",
    "deploy_settings",
    "format_plan",
    "masked",
    "plan_deploy",
    "refuse_command_line_secret",
    "run_deploy",
]
