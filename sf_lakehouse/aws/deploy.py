"""`sf-lakehouse deploy`: provision one AWS environment idempotently.

First a plan is computed from the current AWS state (a list of `Change`s, each with the code
that applies it), then it is applied unless it is a dry run. A second deploy plans only `none`.
Secret values never reach the plan, the output or an exception message.

Resources: the four S3 buckets, the two Glue databases, the Glue service role and its policies,
the Salesforce secret, the Athena workgroup, the two Iceberg tables (pyiceberg's Glue catalog)
and the Glue extraction job with its script, the `sf_lakehouse` package and the pipeline config.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import json
import sys
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from sf_lakehouse.aws import iam
from sf_lakehouse.aws.secrets import (
    SecretError,
    validate_credentials,
)
from sf_lakehouse.config import (
    BUCKET_KINDS,
    DEFAULT_CONFIG_PATH,
    ConfigError,
    Settings,
    load_config,
    resolve_settings,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from sf_lakehouse.lakehouse.tables import TableLayout

Action = Literal["create", "update", "none"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT_PATH = Path(__file__).resolve().parent / "glue_entrypoint.py"
ATHENA_ENGINE_VERSION = "Athena engine version 3"
SSE_ALGORITHM = "AES256"
# Stronger than SSE-S3: a bucket someone moved to KMS is left as it is, not downgraded.
ACCEPTED_SSE_ALGORITHMS = frozenset({SSE_ALGORITHM, "aws:kms", "aws:kms:dsse"})
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
# The job runs the sf_lakehouse package (Python 3.11: datetime.UTC, pyiceberg 0.11 needs >= 3.10),
# so it is a Glue 5.0 job (Python 3.11); Python shell jobs stop at Python 3.9.
GLUE_VERSION = "5.0"
GLUE_JOB_MODULES = ("simple-salesforce", "pyiceberg[pyarrow]", "dagster-pipes", "PyYAML")
SHA256_METADATA_KEY = "sha256"


class DeployError(ValueError):
    """Wrong input (environment, credentials, files): the message says what to pass instead."""


class AwsDeployError(RuntimeError):
    """An AWS call failed: one line with the resource, the AWS error code and what to do."""

    def __init__(self, resource: str, code: str, hint: str) -> None:
        super().__init__(f"{resource}: AWS error {code}: {hint}")
        self.resource = resource
        self.code = code


@dataclass(frozen=True)
class Change:
    resource: str
    action: Action
    detail: str = ""


@dataclass
class _Step:
    change: Change
    apply: Callable[[], None] | None = None
    actions: tuple[str, ...] = ()


@dataclass
class Plan:
    environment: str
    account_id: str
    region: str
    steps: list[_Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [step.change for step in self.steps]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "none"]


# --- errors ---------------------------------------------------------------------------------

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
}


def _hint(code: str, message: str, actions: Sequence[str]) -> str:
    if code in _ACCESS_DENIED or code == "403":
        return (
            f"the deploying identity needs {', '.join(actions) or 'more permissions'}; "
            "see README 'IAM permissions'"
        )
    if code in _BAD_CREDENTIALS:
        return "the AWS credentials are invalid or expired; refresh them (aws sso login, new keys)"
    if code == "BucketAlreadyExists":
        return "the bucket name belongs to another account; change bucket_prefix in the config"
    first_line = " ".join(message.split())[:200]
    return first_line or "see the AWS documentation of this error code"


@contextlib.contextmanager
def _aws(resource: str, actions: Sequence[str] = ()) -> Iterator[None]:
    """Turn boto errors into one-line `AwsDeployError`s naming the resource."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        code = str(info.get("Code") or status or "ClientError")
        raise AwsDeployError(
            resource, code, _hint(code, info.get("Message", ""), actions)
        ) from None
    except NoCredentialsError:
        raise AwsDeployError(
            resource,
            "NoCredentials",
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ) from None
    except EndpointConnectionError as error:
        raise AwsDeployError(
            resource,
            "EndpointConnectionError",
            f"cannot reach {error.kwargs.get('endpoint_url')}; check the network, "
            "AWS_ENDPOINT_URL and the region",
        ) from None
    except BotoCoreError as error:
        raise AwsDeployError(resource, type(error).__name__, str(error)) from None


def _code(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    info = response.get("Error", {})
    return str(info.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


# --- credentials ----------------------------------------------------------------------------


def validate_secret_values(values: Mapping[str, Any], source: str) -> dict[str, str]:
    """The secret's validation (one rule for writing and reading it), as a deploy error."""
    try:
        return validate_credentials(values, source)
    except SecretError as error:
        raise DeployError(str(error)) from None


def collect_credentials(
    *,
    username: str | None = None,
    password: str | None = None,
    security_token: str | None = None,
    domain: str | None = None,
    credentials_file: str | Path | None = None,
    interactive: bool | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> dict[str, str] | None:
    """The secret's JSON from the options, a file, or prompts; None when none was given."""
    options_given = any(v is not None for v in (username, password, security_token, domain))
    if credentials_file is not None:
        if options_given:
            raise DeployError("use either --credentials-file or the --sf-* options, not both")
        path = Path(credentials_file)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DeployError(f"credentials file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DeployError(f"credentials file {path} is not valid JSON") from None
        if not isinstance(values, dict):
            raise DeployError(f"credentials file {path} must hold a JSON object")
        return validate_secret_values(values, f"credentials file {path}")
    if not options_given:
        return None
    if not username:
        raise DeployError(
            "--sf-username is required with --sf-password/--sf-token/--sf-domain "
            "(or pass --credentials-file FILE)"
        )
    missing = [n for n, v in (("--sf-password", password), ("--sf-token", security_token)) if not v]
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if missing and not interactive:
        raise DeployError(
            f"missing {' and '.join(missing)}: pass them or --credentials-file FILE "
            "(they are prompted for only when stdin is a terminal)"
        )
    password = password or prompt("Salesforce password: ")
    security_token = security_token or prompt("Salesforce security token: ")
    values = {
        "username": username,
        "password": password,
        "security_token": security_token,
        "domain": domain or "login",
    }
    return validate_secret_values(values, "the --sf-* options")


def masked(values: Mapping[str, str]) -> str:
    """`username: ***, password: ***, ...`: only the domain (a host name) is shown."""
    return ", ".join(f"{k}: {v if k == 'domain' else '***'}" for k, v in values.items())


# --- table schemas --------------------------------------------------------------------------


def raw_table_schema(fields: Sequence[str]) -> pa.Schema:
    """Initial raw schema from the configured fields; the pipeline evolves it later."""
    import pyarrow as pa

    columns = []
    for name in fields:
        if name == "IsActive":
            arrow_type = pa.bool_()
        elif name.endswith("Date") or name == "SystemModstamp":
            arrow_type = pa.timestamp("us")
        else:
            arrow_type = pa.string()
        columns.append(pa.field(name.lower(), arrow_type))
    columns += [pa.field("_extracted_at", pa.timestamp("us")), pa.field("_run_id", pa.string())]
    return pa.schema(columns)


def dimension_schema() -> pa.Schema:
    import pyarrow as pa

    text = ("scd_id", "user_id", "username", "name", "email")
    return pa.schema(
        [pa.field(n, pa.string()) for n in text]
        + [
            pa.field("is_active", pa.bool_()),
            pa.field("division", pa.string()),
            pa.field("audit_phase", pa.string()),
            pa.field("effective_from", pa.timestamp("us")),
            pa.field("effective_to", pa.timestamp("us")),
            pa.field("is_current", pa.bool_()),
        ]
    )


def dimension_layout() -> TableLayout:
    """The layout dbt-athena gives the model (its config in dim_sf_user_scd)."""
    from sf_lakehouse.dbt_plugin import layout_from_model_config

    return layout_from_model_config(
        {
            "partitioned_by": ["is_current", "division"],
            "write_compression": "zstd",
            "table_properties": {"write_target_data_file_size_bytes": "268435456"},
        }
    )


# --- Glue job artifacts ---------------------------------------------------------------------


def package_zip(package_dir: Path = PACKAGE_DIR) -> bytes:
    """The sf_lakehouse package as a zip for `--extra-py-files`; byte-stable for a given source
    (fixed timestamps, sorted names), so an unchanged package is not uploaded again."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = sorted(
            p
            for p in package_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed")
        )
        for path in files:
            relative = Path(package_dir.name) / path.relative_to(package_dir)
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def glue_job_modules() -> str:
    """`--additional-python-modules`: the versions installed here (the lock file's)."""
    pins = []
    for requirement in GLUE_JOB_MODULES:
        name = requirement.split("[", 1)[0]
        pins.append(f"{requirement}=={metadata.version(name)}")
    return ",".join(pins)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# --- planning -------------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        settings: Settings,
        credentials: Mapping[str, str] | None,
        script_path: Path,
        package_dir: Path,
        config_path: Path,
    ) -> None:
        self.settings = settings
        self.aws = settings.require_aws()
        self.credentials = dict(credentials) if credentials is not None else None
        self.script_path = script_path
        self.package_dir = package_dir
        self.config_path = config_path
        self._clients: dict[str, Any] = {}
        self.new_buckets: set[str] = set()
        self.new_databases: set[str] = set()
        self.role_created = False

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.aws.region)
        return self._clients[service]

    def plan(self) -> Plan:
        with _aws("sts caller identity", ("sts:GetCallerIdentity",)):
            account = self.client("sts").get_caller_identity()["Account"]
        self.account_id = str(account)
        plan = Plan(self.settings.environment, self.account_id, self.aws.region)
        for kind in BUCKET_KINDS:
            plan.steps.append(self._bucket(self.aws.bucket(kind)))
        for database in (self.settings.raw_database, self.settings.curated_database):
            plan.steps.append(self._database(database))
        plan.steps.append(self._role())
        plan.steps.append(self._secret(plan.warnings))
        plan.steps.append(self._workgroup())
        plan.steps += self._tables()
        plan.steps += self._job_artifacts()
        plan.steps.append(self._job())
        return plan

    # S3 buckets: region, default encryption, versioning, public access block.
    def _bucket(self, name: str) -> _Step:
        resource = f"s3 bucket {name}"
        actions = (
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketVersioning",
        )
        s3 = self.client("s3")
        region = self.aws.region
        with _aws(resource, actions):
            try:
                s3.head_bucket(Bucket=name)
                exists = True
            except Exception as error:
                if _code(error) not in ("404", "NoSuchBucket"):
                    raise
                exists = False
        if not exists:
            self.new_buckets.add(name)

            def create() -> None:
                with _aws(resource, ("s3:CreateBucket",)):
                    if region == "us-east-1":
                        s3.create_bucket(Bucket=name)
                    else:
                        s3.create_bucket(
                            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                        )
                self._configure_bucket(name, {"encryption", "versioning", "public access block"})

            detail = f"in {region}, SSE-S3 ({SSE_ALGORITHM}), versioning, public access blocked"
            return _Step(Change(resource, "create", detail), create, ("s3:CreateBucket",))
        with _aws(resource, (*actions, "s3:GetBucketPublicAccessBlock")):
            location = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            if location != region:
                raise DeployError(
                    f"{resource} exists in {location}, not in {region}; delete it or change "
                    f"environments.{self.settings.environment}.aws.region"
                )
            drift = set()
            try:
                rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
                algorithm = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
                if algorithm not in ACCEPTED_SSE_ALGORITHMS:
                    drift.add("encryption")
            except Exception as error:
                if _code(error) != "ServerSideEncryptionConfigurationNotFoundError":
                    raise
                drift.add("encryption")
            if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
                drift.add("versioning")
            try:
                block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
                if any(not block.get(k) for k in PUBLIC_ACCESS_BLOCK):
                    drift.add("public access block")
            except Exception as error:
                if _code(error) != "NoSuchPublicAccessBlockConfiguration":
                    raise
                drift.add("public access block")
        if not drift:
            return _Step(Change(resource, "none", "encrypted, versioned, public access blocked"))
        return _Step(
            Change(resource, "update", "set " + ", ".join(sorted(drift))),
            lambda: self._configure_bucket(name, drift),
        )

    def _configure_bucket(self, name: str, parts: set[str]) -> None:
        s3 = self.client("s3")
        resource = f"s3 bucket {name}"
        if "encryption" in parts:
            with _aws(resource, ("s3:PutEncryptionConfiguration",)):
                s3.put_bucket_encryption(
                    Bucket=name,
                    ServerSideEncryptionConfiguration={
                        "Rules": [
                            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_ALGORITHM}}
                        ]
                    },
                )
        if "versioning" in parts:
            with _aws(resource, ("s3:PutBucketVersioning",)):
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "public access block" in parts:
            with _aws(resource, ("s3:PutBucketPublicAccessBlock",)):
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_BLOCK)
                )

    # Glue databases with their S3 locations.
    def _database(self, database: str) -> _Step:
        resource = f"glue database {database}"
        glue = self.client("glue")
        kind = (
            "raw extracts (append-only)"
            if database == self.settings.raw_database
            else ("curated SCD2 dimension (dbt)")
        )
        desired = {
            "Name": database,
            "LocationUri": self.settings.database_location(database),
            "Description": f"sf_lakehouse {self.settings.environment}: Salesforce User {kind}, "
            "Iceberg tables",
        }
        with _aws(resource, ("glue:GetDatabase",)):
            try:
                current = glue.get_database(Name=database)["Database"]
            except Exception as error:
                if _code(error) != "EntityNotFoundException":
                    raise
                current = None
        if current is None:
            self.new_databases.add(database)

            def create() -> None:
                with _aws(resource, ("glue:CreateDatabase",)):
                    glue.create_database(DatabaseInput=desired)

            return _Step(
                Change(resource, "create", f"location {desired['LocationUri']}"),
                create,
                ("glue:CreateDatabase",),
            )
        drift = [k for k in ("LocationUri", "Description") if current.get(k) != desired[k]]
        if not drift:
            return _Step(Change(resource, "none", f"location {desired['LocationUri']}"))

        def update() -> None:
            # UpdateDatabase replaces the definition: keep parameters others set.
            database_input = dict(desired, Parameters=current.get("Parameters") or {})
            with _aws(resource, ("glue:UpdateDatabase",)):
                glue.update_database(Name=database, DatabaseInput=database_input)

        return _Step(
            Change(resource, "update", "set " + ", ".join(drift)), update, ("glue:UpdateDatabase",)
        )

    # The Glue service role: trust, the AWS managed policy, the least-privilege inline policy.
    def _role(self) -> _Step:
        name = self.aws.glue_role_name
        resource = f"iam role {name}"
        iam_client = self.client("iam")
        inline = iam.glue_role_inline_policy(self.settings, self.account_id)
        self.role_arn = iam.role_arn(self.account_id, name)
        read_actions = ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:GetRolePolicy")
        with _aws(resource, read_actions):
            try:
                role = iam_client.get_role(RoleName=name)["Role"]
            except Exception as error:
                if _code(error) != "NoSuchEntity":
                    raise
                role = None
            if role is not None:
                self.role_arn = role["Arn"]
                attached = {
                    p["PolicyArn"]
                    for page in iam_client.get_paginator("list_attached_role_policies").paginate(
                        RoleName=name
                    )
                    for p in page["AttachedPolicies"]
                }
                try:
                    current_inline = _policy_document(
                        iam_client.get_role_policy(
                            RoleName=name, PolicyName=iam.INLINE_POLICY_NAME
                        )["PolicyDocument"]
                    )
                except Exception as error:
                    if _code(error) != "NoSuchEntity":
                        raise
                    current_inline = None
        write_actions = (
            "iam:CreateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
        )
        if role is None:

            def create() -> None:
                with _aws(resource, ("iam:CreateRole",)):
                    iam_client.create_role(
                        RoleName=name,
                        AssumeRolePolicyDocument=json.dumps(iam.GLUE_TRUST_POLICY),
                        Description=f"sf_lakehouse Glue jobs, environment {self.aws.environment}",
                    )
                self.role_created = True
                self._attach_managed(name)
                self._put_inline(name, inline)

            detail = "trust glue.amazonaws.com, AWSGlueServiceRole, least-privilege inline policy"
            return _Step(Change(resource, "create", detail), create, write_actions)
        fixes: list[Callable[[], None]] = []
        drift = []
        if _policy_document(role["AssumeRolePolicyDocument"]) != iam.GLUE_TRUST_POLICY:
            drift.append("trust policy")

            def trust() -> None:
                with _aws(resource, ("iam:UpdateAssumeRolePolicy",)):
                    iam_client.update_assume_role_policy(
                        RoleName=name, PolicyDocument=json.dumps(iam.GLUE_TRUST_POLICY)
                    )

            fixes.append(trust)
        if iam.GLUE_MANAGED_POLICY_ARN not in attached:
            drift.append("attach AWSGlueServiceRole")
            fixes.append(lambda: self._attach_managed(name))
        if current_inline != inline:
            drift.append("inline policy " + ("missing" if current_inline is None else "differs"))
            fixes.append(lambda: self._put_inline(name, inline))
        if not drift:
            return _Step(Change(resource, "none", "trust, managed and inline policies as declared"))

        def update() -> None:
            for fix in fixes:
                fix()

        return _Step(Change(resource, "update", ", ".join(drift)), update, write_actions)

    def _attach_managed(self, name: str) -> None:
        with _aws(f"iam role {name}", ("iam:AttachRolePolicy",)):
            self.client("iam").attach_role_policy(
                RoleName=name, PolicyArn=iam.GLUE_MANAGED_POLICY_ARN
            )

    def _put_inline(self, name: str, policy: dict[str, Any]) -> None:
        with _aws(f"iam role {name}", ("iam:PutRolePolicy",)):
            self.client("iam").put_role_policy(
                RoleName=name,
                PolicyName=iam.INLINE_POLICY_NAME,
                PolicyDocument=json.dumps(policy),
            )

    # The Salesforce credentials secret: values never leave this method except to AWS.
    def _secret(self, warnings: list[str]) -> _Step:
        secret_id = self.settings.salesforce.secret_id
        if not secret_id:
            raise DeployError(
                f"environments.{self.settings.environment}.salesforce_auth.secret_id is not set "
                "in config/pipeline-config.yml"
            )
        resource = f"secret {secret_id}"
        sm = self.client("secretsmanager")
        with _aws(resource, ("secretsmanager:DescribeSecret",)):
            try:
                sm.describe_secret(SecretId=secret_id)
                exists = True
            except Exception as error:
                if _code(error) != "ResourceNotFoundException":
                    raise
                exists = False
        if self.credentials is None:
            if exists:
                return _Step(Change(resource, "none", "unchanged (no credentials given)"))
            how = (
                f"create it with `sf-lakehouse deploy --environment {self.aws.environment} "
                "--sf-username U --sf-password P --sf-token T` (on a terminal, password and token "
                "are prompted for when omitted) or with --credentials-file FILE"
            )
            warnings.append(f"{resource} is missing: the pipeline cannot log in; {how}")
            return _Step(Change(resource, "none", f"MISSING; {how}"))
        secret_string = json.dumps(self.credentials)
        if not exists:

            def create() -> None:
                with _aws(resource, ("secretsmanager:CreateSecret",)):
                    sm.create_secret(
                        Name=secret_id,
                        SecretString=secret_string,
                        Description="Salesforce API credentials of sf_lakehouse "
                        f"({self.aws.environment})",
                    )

            return _Step(
                Change(resource, "create", masked(self.credentials)),
                create,
                ("secretsmanager:CreateSecret",),
            )
        with _aws(resource, ("secretsmanager:GetSecretValue",)):
            stored_string = sm.get_secret_value(SecretId=secret_id).get("SecretString") or ""
        try:
            stored = json.loads(stored_string)
        except json.JSONDecodeError:
            stored = None
        if stored == self.credentials:
            return _Step(Change(resource, "none", "stored values equal the given ones"))
        changed = (
            sorted(
                k
                for k in set(stored) | set(self.credentials)
                if stored.get(k) != self.credentials.get(k)
            )
            if isinstance(stored, dict)
            else ["not a JSON object"]
        )

        def update() -> None:
            with _aws(resource, ("secretsmanager:PutSecretValue",)):
                sm.put_secret_value(SecretId=secret_id, SecretString=secret_string)

        return _Step(
            Change(
                resource, "update", f"{masked(self.credentials)} (changed: {', '.join(changed)})"
            ),
            update,
            ("secretsmanager:PutSecretValue",),
        )

    # The Athena workgroup: results location enforced, engine v3.
    def _workgroup(self) -> _Step:
        name = self.aws.athena_workgroup
        resource = f"athena workgroup {name}"
        athena = self.client("athena")
        location = self.aws.athena_results_location
        with _aws(resource, ("athena:ListWorkGroups", "athena:GetWorkGroup")):
            # GetWorkGroup of a missing workgroup is an error on AWS but an empty answer on moto.
            names = _workgroup_names(athena)
            current = athena.get_work_group(WorkGroup=name)["WorkGroup"] if name in names else None
        if current is None:

            def create() -> None:
                with _aws(resource, ("athena:CreateWorkGroup",)):
                    athena.create_work_group(
                        Name=name,
                        Description=f"sf_lakehouse {self.aws.environment}: dbt and queries",
                        Configuration={
                            "ResultConfiguration": {"OutputLocation": location},
                            "EnforceWorkGroupConfiguration": True,
                            "EngineVersion": {"SelectedEngineVersion": ATHENA_ENGINE_VERSION},
                        },
                    )

            return _Step(
                Change(
                    resource, "create", f"results {location}, enforced, {ATHENA_ENGINE_VERSION}"
                ),
                create,
                ("athena:CreateWorkGroup",),
            )
        config = current.get("Configuration") or {}
        drift = []
        if (config.get("ResultConfiguration") or {}).get("OutputLocation") != location:
            drift.append(f"results location {location}")
        if config.get("EnforceWorkGroupConfiguration") is not True:
            drift.append("enforce workgroup configuration")
        engine = (config.get("EngineVersion") or {}).get("SelectedEngineVersion")
        if engine != ATHENA_ENGINE_VERSION:
            drift.append(ATHENA_ENGINE_VERSION)
        if not drift:
            return _Step(Change(resource, "none", f"results {location}"))

        def update() -> None:
            with _aws(resource, ("athena:UpdateWorkGroup",)):
                athena.update_work_group(
                    WorkGroup=name,
                    ConfigurationUpdates={
                        "ResultConfigurationUpdates": {"OutputLocation": location},
                        "EnforceWorkGroupConfiguration": True,
                        "EngineVersion": {"SelectedEngineVersion": ATHENA_ENGINE_VERSION},
                    },
                )

        return _Step(
            Change(resource, "update", "set " + ", ".join(drift)),
            update,
            ("athena:UpdateWorkGroup",),
        )

    # The Iceberg tables through pyiceberg's Glue catalog (ensure_table: never drops data).
    def _tables(self) -> list[_Step]:
        from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, _spec_matches, load_table_or_none

        settings = self.settings
        wanted = [
            (
                settings.raw_table_identifier,
                settings.raw_database,
                raw_table_schema(settings.salesforce.fields),
                RAW_LAYOUT,
            ),
            (
                settings.dimension_identifier,
                settings.curated_database,
                dimension_schema(),
                dimension_layout(),
            ),
        ]
        actions = ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "s3:GetObject")
        steps = []
        for identifier, database, schema, layout in wanted:
            resource = f"iceberg table {identifier}"
            table = None
            if database not in self.new_databases:
                with _aws(resource, actions), _storage_errors(resource):
                    table = load_table_or_none(self._catalog(), identifier)
            apply = self._ensure_table(resource, identifier, schema, layout)
            partitions = ", ".join(f"{p.transform}({p.source})" for p in layout.partition_fields)
            if table is None:
                detail = f"partitioned by {partitions}, {_codec(layout.properties)}"
                steps.append(_Step(Change(resource, "create", detail), apply, actions))
                continue
            drift = []
            if not _spec_matches(table, layout):
                drift.append(f"partition spec {partitions}")
            stale = sorted(
                k
                for k, v in layout.properties.items()
                if k != "format-version" and table.properties.get(k) != v
            )
            if stale:
                drift.append("properties " + ", ".join(stale))
            if drift:
                steps.append(_Step(Change(resource, "update", "; ".join(drift)), apply, actions))
            else:
                steps.append(_Step(Change(resource, "none", f"partitioned by {partitions}")))
        return steps

    def _catalog(self) -> Any:
        if not hasattr(self, "_iceberg_catalog"):
            from sf_lakehouse.lakehouse.tables import open_catalog

            self._iceberg_catalog = open_catalog(self.settings.catalog_properties())
        return self._iceberg_catalog

    def _ensure_table(
        self, resource: str, identifier: str, schema: pa.Schema, layout: TableLayout
    ) -> Callable[[], None]:
        def apply() -> None:
            from sf_lakehouse.lakehouse.tables import ensure_table

            write_actions = ("glue:CreateTable", "glue:UpdateTable", "s3:PutObject")
            with _aws(resource, write_actions), _storage_errors(resource):
                ensure_table(self._catalog(), identifier, schema, layout)

        return apply

    # The job's script, the package and the config in the scripts bucket (uploaded when changed).
    def _job_artifacts(self) -> list[_Step]:
        if not self.script_path.is_file():
            raise DeployError(
                f"Glue job script {self.script_path} does not exist; it is part of the package "
                "(sf_lakehouse/aws/glue_entrypoint.py)"
            )
        if not self.config_path.is_file():
            raise DeployError(f"pipeline config {self.config_path} does not exist")
        script_bucket, script_key = _split_s3(self.aws.glue_script_location)
        folder = script_key.rsplit("/", 1)[0]
        self.package_location = f"s3://{script_bucket}/{folder}/sf_lakehouse.zip"
        self.config_location = f"s3://{script_bucket}/{folder}/pipeline-config.yml"
        artifacts = [
            (self.aws.glue_script_location, self.script_path.read_bytes()),
            (self.package_location, package_zip(self.package_dir)),
            (self.config_location, self.config_path.read_bytes()),
        ]
        return [self._object(uri, body) for uri, body in artifacts]

    def _object(self, uri: str, body: bytes) -> _Step:
        bucket, key = _split_s3(uri)
        resource = f"s3 object {uri}"
        digest = hashlib.sha256(body).hexdigest()
        s3 = self.client("s3")
        current_digest = None
        exists = False
        if bucket not in self.new_buckets:
            with _aws(resource, ("s3:GetObject",)):
                try:
                    head = s3.head_object(Bucket=bucket, Key=key)
                    exists = True
                    current_digest = (head.get("Metadata") or {}).get(SHA256_METADATA_KEY)
                except Exception as error:
                    if _code(error) not in ("404", "NoSuchKey"):
                        raise
        if exists and current_digest == digest:
            return _Step(Change(resource, "none", f"sha256 {digest[:12]}"))

        def upload() -> None:
            with _aws(resource, ("s3:PutObject",)):
                s3.put_object(
                    Bucket=bucket, Key=key, Body=body, Metadata={SHA256_METADATA_KEY: digest}
                )

        action: Action = "update" if exists else "create"
        detail = f"upload {len(body)} bytes, sha256 {digest[:12]}"
        return _Step(Change(resource, action, detail), upload, ("s3:PutObject",))

    # The Glue extraction job.
    def _job(self) -> _Step:
        name = self.aws.glue_job_name
        resource = f"glue job {name}"
        glue = self.client("glue")
        desired: dict[str, Any] = {
            "Description": f"sf_lakehouse: Salesforce User extraction ({self.aws.environment})",
            "Role": self.role_arn,
            "Command": {
                "Name": "glueetl",
                "ScriptLocation": self.aws.glue_script_location,
                "PythonVersion": "3",
            },
            "DefaultArguments": {
                "--SF_LAKEHOUSE_ENV": self.aws.environment,
                # The job reads the pipeline config from its working directory (--extra-files).
                "--SF_LAKEHOUSE_CONFIG": "pipeline-config.yml",
                "--additional-python-modules": glue_job_modules(),
                "--extra-py-files": self.package_location,
                "--extra-files": self.config_location,
                "--job-language": "python",
            },
            "GlueVersion": GLUE_VERSION,
            "WorkerType": "G.1X",
            "NumberOfWorkers": 2,
            "Timeout": 60,
            "MaxRetries": 0,
            # One extraction at a time: two runs would read the same watermark.
            "ExecutionProperty": {"MaxConcurrentRuns": 1},
        }
        with _aws(resource, ("glue:GetJob",)):
            try:
                current = glue.get_job(JobName=name)["Job"]
            except Exception as error:
                if _code(error) != "EntityNotFoundException":
                    raise
                current = None
        if current is None:
            return _Step(
                Change(resource, "create", f"glueetl {GLUE_VERSION}, role {self.role_arn}"),
                lambda: self._retry_new_role(
                    resource, lambda: glue.create_job(Name=name, **desired)
                ),
                ("glue:CreateJob", "iam:PassRole"),
            )
        drift = [k for k, v in desired.items() if not _matches(current.get(k), v)]
        if not drift:
            return _Step(Change(resource, "none", f"script {self.aws.glue_script_location}"))
        return _Step(
            Change(resource, "update", "set " + ", ".join(drift)),
            lambda: self._retry_new_role(
                resource, lambda: glue.update_job(JobName=name, JobUpdate=desired)
            ),
            ("glue:UpdateJob", "iam:PassRole"),
        )

    def _retry_new_role(self, resource: str, call: Callable[[], Any]) -> None:
        # IAM is eventually consistent: Glue may not see a role created seconds ago yet.
        attempts = 6 if self.role_created else 1
        for attempt in range(attempts):
            try:
                with _aws(resource, ("glue:CreateJob", "glue:UpdateJob", "iam:PassRole")):
                    call()
                return
            except AwsDeployError as error:
                if error.code != "InvalidInputException" or attempt == attempts - 1:
                    raise
                time.sleep(5)


def _workgroup_names(athena: Any) -> set[str]:
    """ListWorkGroups has no boto3 paginator: follow NextToken by hand."""
    names: set[str] = set()
    kwargs: dict[str, str] = {}
    while True:
        page = athena.list_work_groups(**kwargs)
        names |= {wg["Name"] for wg in page.get("WorkGroups", [])}
        if not page.get("NextToken"):
            return names
        kwargs = {"NextToken": page["NextToken"]}


def _matches(current: Any, desired: Any) -> bool:
    """Desired keys only: AWS adds defaults (e.g. MaxCapacity) that are not drift."""
    if isinstance(desired, dict):
        current = current or {}
        return isinstance(current, dict) and all(
            _matches(current.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, (int, float)) and isinstance(current, (int, float)):
        return float(current) == float(desired)
    return current == desired


def _policy_document(document: Any) -> Any:
    """IAM returns policies URL-encoded strings or (boto3) already-parsed dicts."""
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def _codec(properties: Mapping[str, str]) -> str:
    codec = properties.get("write.parquet.compression-codec", "default")
    size = int(properties.get("write.target-file-size-bytes", "0")) // (1024 * 1024)
    return f"parquet {codec}, target {size} MB"


@contextlib.contextmanager
def _storage_errors(resource: str) -> Iterator[None]:
    """pyiceberg reads and writes metadata files through pyarrow's S3 file system (OSError)."""
    try:
        yield
    except OSError as error:
        message = " ".join(str(error).split())[:200]
        raise AwsDeployError(
            resource, "S3", f"cannot read or write table metadata: {message}"
        ) from None


# --- public entry points --------------------------------------------------------------------


def aws_environments() -> list[str]:
    environments = load_config().get("environments") or {}
    return sorted(
        name
        for name, entry in environments.items()
        if ((entry or {}).get("catalog") or {}).get("type") == "glue"
    )


def deploy_settings(environment: str) -> Settings:
    """The settings of an AWS environment; `local` and unknown names are clear errors."""
    settings = resolve_settings(environment)
    if settings.aws is None:
        raise DeployError(
            f"environment {environment!r} is not an AWS environment (it runs on this machine, "
            f"nothing to deploy); deploy one of: {', '.join(aws_environments())}"
        )
    return settings


def plan_deploy(
    settings: Settings,
    *,
    credentials: Mapping[str, str] | None = None,
    script_path: Path | None = None,
    package_dir: Path = PACKAGE_DIR,
    config_path: Path | None = None,
) -> Plan:
    """Read the current AWS state and return what a deploy would change (changes nothing)."""
    import os

    from sf_lakehouse.config import CONFIG_VAR

    config = config_path or Path(os.environ.get(CONFIG_VAR) or DEFAULT_CONFIG_PATH)
    script = Path(script_path) if script_path is not None else DEFAULT_SCRIPT_PATH
    return _Planner(settings, credentials, script, Path(package_dir), config).plan()


def apply_plan(plan: Plan, *, out: TextIO | None = None) -> list[Change]:
    """Apply the plan's changes in order (buckets, databases, role, ..., tables, job)."""
    applied = []
    for step in plan.steps:
        if step.change.action == "none" or step.apply is None:
            continue
        step.apply()
        applied.append(step.change)
        if out is not None:
            print(f"  done    {step.change.resource}", file=out)
    return applied


def format_plan(plan: Plan) -> str:
    lines = [
        f"Deploy plan for environment {plan.environment!r} "
        f"(account {plan.account_id}, {plan.region}):"
    ]
    for change in plan.changes:
        detail = f"  ({change.detail})" if change.detail else ""
        lines.append(f"  {change.action:<7} {change.resource}{detail}")
    return "\n".join(lines)


def run_deploy(
    environment: str,
    *,
    dry_run: bool = False,
    assume_yes: bool = False,
    username: str | None = None,
    password: str | None = None,
    security_token: str | None = None,
    domain: str | None = None,
    credentials_file: str | None = None,
    script_path: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The `deploy` command: 0 done (or nothing to do), 1 AWS error, 2 wrong input."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        settings = deploy_settings(environment)
        # Credentials are validated before any AWS call.
        credentials = collect_credentials(
            username=username,
            password=password,
            security_token=security_token,
            domain=domain,
            credentials_file=credentials_file,
        )
        plan = plan_deploy(settings, credentials=credentials, script_path=script_path)
        print(format_plan(plan), file=out)
        pending = plan.pending
        if dry_run:
            print(f"Dry run: nothing was changed ({len(pending)} change(s) planned).", file=out)
        elif not pending:
            suffix = " (but see the warning below)" if plan.warnings else ""
            print(f"Everything is as declared: nothing to change{suffix}.", file=out)
        else:
            if not assume_yes and sys.stdin is not None and sys.stdin.isatty():
                answer = input(f"Apply {len(pending)} change(s) to {environment}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("Nothing was changed.", file=out)
                    return 1
            applied = apply_plan(plan, out=out)
            print(f"Applied {len(applied)} change(s) to {environment}.", file=out)
        for warning in plan.warnings:
            print(f"warning: {warning}", file=err)
        return 0
    except (DeployError, ConfigError) as error:
        print(f"error: {error}", file=err)
        return 2
    except AwsDeployError as error:
        print(f"error: {error}", file=err)
        return 1
