"""Run the Pulumi program under Pulumi's mocks and record what it declared (the infra tests' harness)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
# Literal passwords the tests give as the dbUsers secret; none may reach a resource input unwrapped.
SECRET_PASSWORDS = ("s3cret-app-Pa55", "s3cret-ro-Pa55")
SECRET_DB_USERS = [
    {"username": "app_user", "password": SECRET_PASSWORDS[0], "privileges": ["SELECT", "INSERT"]},
    {"username": "readonly_user", "password": SECRET_PASSWORDS[1], "privileges": ["SELECT"]},
    {"username": "report_user", "password_secret_id": "dev/db-users/report_user", "privileges": ["SELECT"]},
]


@dataclass
class Declared:
    """One resource the program declared: its type token, logical name and inputs as the engine got them."""

    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class ProgramRun:
    stack: str
    region: str
    resources: list[Declared] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def of_type(self, token: str) -> list[Declared]:
        return [resource for resource in self.resources if resource.type == token]

    def one(self, token: str, **inputs: Any) -> Declared:
        found = [
            resource
            for resource in self.of_type(token)
            if all(resource.inputs.get(key) == value for key, value in inputs.items())
        ]
        assert len(found) == 1, f"{len(found)} {token} with {inputs}"
        return found[0]


def _service(token: str) -> str:
    module = token.split(":")[1].split("/")[0]
    return {"cloudwatch": "events", "lambda": "lambda", "iam": "iam"}.get(module, module)


class RecordingMocks(pulumi.runtime.Mocks):
    """One small mock for every resource type: echo the inputs, add the ids and ARNs AWS would."""

    def __init__(self, run: ProgramRun) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.run.resources.append(Declared(args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        name = outputs.get("name") or outputs.get("bucket") or args.name
        if isinstance(name, dict):  # a secret name never happens here; keep the mock total anyway
            name = args.name
        region = self.run.region
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.setdefault("arn", f"arn:aws:s3:::{name}")
            outputs.setdefault("bucket", name)
        elif args.typ == "aws:sqs/queue:Queue":
            outputs.setdefault("url", f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}")
            outputs.setdefault("arn", f"arn:aws:sqs:{region}:{ACCOUNT}:{name}")
        elif args.typ == "aws:ssm/parameter:Parameter":
            outputs.setdefault("arn", f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{name}")
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            outputs.setdefault("arn", f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}")
        elif args.typ == "aws:dynamodb/table:Table":
            outputs.setdefault("arn", f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}")
        elif args.typ == "aws:cloudwatch/eventBus:EventBus":
            outputs.setdefault("arn", f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}")
        elif args.typ == "aws:cloudwatch/eventRule:EventRule":
            bus = outputs.get("eventBusName")
            path = f"{bus}/{name}" if bus else name
            outputs.setdefault("arn", f"arn:aws:events:{region}:{ACCOUNT}:rule/{path}")
        elif args.typ == "aws:kms/key:Key":
            outputs.setdefault("keyId", "1234abcd-12ab-34cd-56ef-1234567890ab")
            outputs.setdefault(
                "arn", f"arn:aws:kms:{region}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            )
        elif args.typ == "aws:iam/role:Role":
            outputs.setdefault("arn", f"arn:aws:iam::{ACCOUNT}:role/{name}")
        else:
            outputs.setdefault("arn", f"arn:aws:{_service(args.typ)}:{region}:{ACCOUNT}:{name}")
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.run.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
                "id": ACCOUNT,
                "userId": "AIDAEXAMPLE",
            }, []
        return {}, []


def stack_config(path: Path, db_users: Any | None = None) -> tuple[dict[str, str], list[str]]:
    """A stack file's config as the Pulumi engine hands it to the program (objects as JSON strings)."""
    document = yaml.safe_load(path.read_text())["config"]
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in document.items()}
    secret_keys = []
    if db_users is not None:
        config["aurora-restore:dbUsers"] = json.dumps(db_users)
        secret_keys.append("aurora-restore:dbUsers")
    return config, secret_keys


def run_program(stack: str, config: dict[str, str], secret_keys: list[str]) -> ProgramRun:
    from infra import program

    run = ProgramRun(stack=stack, region=config["aws:region"])
    pulumi.runtime.settings.ROOT.set(None)  # a fresh Stack resource for this run
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(RecordingMocks(run), project="aurora-restore", stack=stack, preview=False)

    @pulumi.runtime.test
    def declare() -> pulumi.Output[Any]:
        outputs = program.main()
        return pulumi.Output.from_input(outputs).apply(run.outputs.update)

    declare()
    return run


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def plain_strings(value: Any) -> list[str]:
    """Every string in `value` that is not inside a secret."""
    if is_secret(value):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for inner in value.values() for text in plain_strings(inner)]
    if isinstance(value, list | tuple):
        return [text for inner in value for text in plain_strings(inner)]
    return []
