"""ECR: the repository `sf-lakehouse` of the one image (scan on push, immutable tags, AES256).
Shared by every environment of the account; deploy prints its URI and the commands that push
an image to it."""

from __future__ import annotations

from collections.abc import Callable

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState

READ_ACTIONS = ("ecr:DescribeRepositories",)
WRITE_ACTIONS = (
    "ecr:CreateRepository",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
)


def repository_uri(ctx: DeployContext, state: RuntimeState) -> str:
    return f"{ctx.account_id}.dkr.ecr.{ctx.region}.amazonaws.com/{state.names.repository}"


def push_commands(ctx: DeployContext, state: RuntimeState, tag: str = "<tag>") -> list[str]:
    """The commands that build and push the image (README 'In production')."""
    uri = repository_uri(ctx, state)
    registry = uri.split("/", 1)[0]
    return [
        f"aws ecr get-login-password --region {ctx.region} | "
        f"docker login --username AWS --password-stdin {registry}",
        f"docker build --platform linux/amd64 -t {uri}:{tag} .",
        f"docker push {uri}:{tag}",
        f"sf-lakehouse deploy --environment {ctx.settings.environment} --image-uri {uri}:{tag}",
    ]


def plan_repository(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.repository
    resource = f"ecr repository {name}"
    ecr = ctx.client("ecr")
    with aws_errors(resource, READ_ACTIONS):
        try:
            current = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except Exception as error:
            if error_code(error) != "RepositoryNotFoundException":
                raise
            current = None
    summary = "scan on push, immutable tags, AES256"
    if current is None:

        def create() -> None:
            with aws_errors(resource, ("ecr:CreateRepository",)):
                ecr.create_repository(
                    repositoryName=name,
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    encryptionConfiguration={"encryptionType": "AES256"},
                )

        return Step(Change(resource, "create", summary), create, WRITE_ACTIONS)
    fixes: list[Callable[[], None]] = []
    drift = []
    if not (current.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        drift.append("scan on push")
        fixes.append(
            lambda: ecr.put_image_scanning_configuration(
                repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
            )
        )
    if current.get("imageTagMutability") != "IMMUTABLE":
        drift.append("immutable tags")
        fixes.append(
            lambda: ecr.put_image_tag_mutability(
                repositoryName=name, imageTagMutability="IMMUTABLE"
            )
        )
    if not drift:
        return Step(Change(resource, "none", summary))

    def update() -> None:
        with aws_errors(resource, WRITE_ACTIONS[1:]):
            for fix in fixes:
                fix()

    return Step(Change(resource, "update", "set " + ", ".join(drift)), update, WRITE_ACTIONS[1:])
