"""A source cluster in another account: the role assumed there, what is checked through it, the share.

With `source_account_id` set, snapshot_check finds the snapshot through a role the functions assume in the
source account (STS AssumeRole with the configured external id, a session named after the operation), and
refuses, before anything changes, a snapshot the target account could not copy: encrypted under the AWS
managed `aws/rds` key (it cannot be shared), or under a key whose policy and grants do not let the target
account use it. copy_snapshot shares the snapshot with the target account (the `restore` attribute) before
the copy, which re-encrypts it under `kms_key_id`; cleanup stops sharing it. docs/cross-account.md.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError, ConfigError
from functions.rds import RdsAdapter
from schemas.common import partition_of

if TYPE_CHECKING:
    from functions.engine.contract import StepContext
    from schemas.config import RestoreConfig

ROLE_NAME = "aurora-restore-source-{environment}"
SESSION_SECONDS = 3600
# Credentials this close to expiring are assumed again rather than used.
RENEW_BEFORE = timedelta(minutes=5)
# What the target account does with the source snapshot's key when it copies the shared snapshot
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html#aurora-share-snapshot.Encrypted).
KEY_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey")
GRANT_OPERATIONS = frozenset(action.removeprefix("kms:") for action in KEY_ACTIONS)
SETUP = "docs/cross-account.md"

_lock = threading.Lock()
_assumed: dict[tuple[str, str], dict[str, Any]] = aws.dependent_cache()


def role_arn(config: RestoreConfig, environment: str) -> str:
    """source_role_arn, or the role infra/source_account.py makes: aurora-restore-source-<environment>."""
    if config.source_role_arn:
        return config.source_role_arn
    partition = partition_of(config.target_region)
    name = ROLE_NAME.format(environment=environment)
    return f"arn:{partition}:iam::{config.source_account_id}:role/{name}"


def session_name(operation_id: str) -> str:
    """The operation's id as an STS session name (2-64 of [\\w+=,.@-]): CloudTrail in the source account
    then names the operation behind each call."""
    return re.sub(r"[^\w+=,.@-]", "-", f"aurora-restore-{operation_id}")[:64]


def credentials(ctx: StepContext) -> dict[str, Any]:
    """The source role's credentials for this operation, assumed once and kept until close to expiry."""
    config, arn = ctx.config, role_arn(ctx.config, ctx.settings.environment)
    key = (arn, ctx.operation_id)
    with _lock:
        found = _assumed.get(key)
    if found is not None and found["Expiration"] - RENEW_BEFORE > datetime.now(UTC):
        return found
    sts = aws.client("sts", config.target_region)
    try:
        answer = sts.assume_role(
            RoleArn=arn,
            RoleSessionName=session_name(ctx.operation_id),
            ExternalId=config.source_external_id,
            DurationSeconds=SESSION_SECONDS,
        )
    except ClientError as exc:
        if aws.is_transient(exc):
            raise AwsError(f"assuming {arn}: {aws.error_code(exc)}", retryable=True) from exc
        raise ConfigError(
            f"the functions cannot assume the source role {arn} ({aws.error_code(exc)}): deploy it in account"
            f" {config.source_account_id} with infra/source, trusting this environment's function roles with"
            f" source_external_id as its external id, or fix source_role_arn / source_external_id ({SETUP})"
        ) from exc
    found = dict(answer["Credentials"])
    with _lock:
        _assumed.clear()  # one operation per invocation: the previous one's are not needed again
        _assumed[key] = found
    return found


class SourceRds(RdsAdapter):
    """The source account's RDS in the source region, through the assumed role."""

    def __init__(self, region: str, role_credentials: dict[str, Any]) -> None:
        super().__init__(region)
        self._credentials = role_credentials

    @property
    def _client(self) -> Any:
        return aws.client("rds", self.region, credentials=self._credentials)


def rds(ctx: StepContext) -> RdsAdapter:
    """The RDS the source snapshot is found in: the source account's when configured, else the target's."""
    if not ctx.config.source_account_id:
        return ctx.source_rds
    return SourceRds(ctx.config.source_region, credentials(ctx))


def target_account(ctx: StepContext) -> str:
    """The account the functions run in (GetCallerIdentity needs no permission)."""
    return str(aws.client("sts", ctx.config.target_region).get_caller_identity()["Account"])


# -- snapshot_check: what the target account could not copy, refused before anything changes ----------------
def check_snapshot(ctx: StepContext, snapshot: dict[str, Any]) -> None:
    """A source snapshot the target account can copy: unencrypted, or encrypted under a customer managed key
    whose policy or grants let the target account use it, with kms_key_id to re-encrypt the copy under."""
    config = ctx.config
    if not config.source_account_id or not snapshot.get("StorageEncrypted"):
        return
    name, account = snapshot["DBClusterSnapshotIdentifier"], config.source_account_id
    if not config.kms_key_id:
        raise ConfigError(
            f"snapshot {name} of account {account} is encrypted: set kms_key_id to a key of this account in"
            f" {config.target_region}; a shared encrypted snapshot is copied only under a key of the copier's"
        )
    role = credentials(ctx)
    key = _source_key(role, config.source_region, str(snapshot.get("KmsKeyId")), name)
    target = target_account(ctx)
    if key.get("KeyManager") == "AWS":
        raise ConfigError(
            f"snapshot {name} is encrypted with the AWS managed key aws/rds of account {account}, which cannot"
            f" be shared: in account {account}, copy it (and take later snapshots) under a customer managed"
            f" key, and let account {target} use that key (kms:CreateGrant, kms:Decrypt, kms:DescribeKey in"
            f" its key policy, or the grant infra/source makes) ({SETUP})"
        )
    if not _key_usable(role, config.source_region, key["Arn"], target):
        raise ConfigError(
            f"snapshot {name}'s key {key['Arn']} does not let account {target} use it: add account {target}"
            f" to its key policy for {', '.join(KEY_ACTIONS)}, or set sourceKeyArn for infra/source to grant"
            f" it; the copy would be refused ({SETUP})"
        )


def _source_key(role: dict[str, Any], region: str, key_id: str, snapshot_name: str) -> dict[str, Any]:
    kms = aws.client("kms", region, credentials=role)
    try:
        return dict(kms.describe_key(KeyId=key_id)["KeyMetadata"])
    except ClientError as exc:
        if aws.is_transient(exc):
            raise AwsError(f"describing {key_id}: {aws.error_code(exc)}", retryable=True) from exc
        raise ConfigError(
            f"the source role cannot describe snapshot {snapshot_name}'s key {key_id} ({aws.error_code(exc)}):"
            f" grant it kms:DescribeKey, kms:GetKeyPolicy and kms:ListGrants on that key ({SETUP})"
        ) from exc


def _key_usable(role: dict[str, Any], region: str, key_arn: str, account: str) -> bool:
    """Whether the key's policy, or a grant on it, lets `account` use it for the copy."""
    kms = aws.client("kms", region, credentials=role)
    partition = partition_of(region)
    try:
        policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
        if key_policy_allows(policy, account, partition):
            return True
        grants = kms.list_grants(KeyId=key_arn).get("Grants", [])
    except ClientError as exc:
        if aws.is_transient(exc):
            raise AwsError(f"reading {key_arn}'s policy: {aws.error_code(exc)}", retryable=True) from exc
        raise ConfigError(
            f"the source role cannot read key {key_arn}'s policy and grants ({aws.error_code(exc)}): grant it"
            f" kms:GetKeyPolicy and kms:ListGrants on that key ({SETUP})"
        ) from exc
    return any(grant_allows(grant, account, partition) for grant in grants)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def names_account(principal: Any, account: str, partition: str) -> bool:
    """Whether a policy's Principal takes in `account`: "*", the account id, or one of its ARNs."""
    if principal == "*":
        return True
    found = principal.get("AWS", []) if isinstance(principal, dict) else []
    return any(
        value in ("*", account) or str(value).startswith(f"arn:{partition}:iam::{account}:")
        for value in _listed(found)
    )


def key_policy_allows(policy: dict[str, Any], account: str, partition: str = "aws") -> bool:
    """Whether a key policy allows `account` every action of KEY_ACTIONS (and denies it none outright).

    Conditions are not evaluated (an allowed action under a condition counts as allowed): what a condition
    would refuse shows as the copy's refusal, before the target is touched."""
    allowed: set[str] = set()
    for statement in _listed(policy.get("Statement", [])):
        if "Principal" not in statement or not names_account(statement["Principal"], account, partition):
            continue
        actions = [str(action).lower() for action in _listed(statement.get("Action", []))]
        matched = {wanted for wanted in KEY_ACTIONS if any(fnmatchcase(wanted.lower(), a) for a in actions)}
        if statement.get("Effect") == "Deny" and matched and "Condition" not in statement:
            return False
        if statement.get("Effect") == "Allow":
            allowed |= matched
    return allowed == set(KEY_ACTIONS)


def grant_allows(grant: dict[str, Any], account: str, partition: str = "aws") -> bool:
    """Whether a KMS grant gives `account` (its root or one of its principals) the copy's operations."""
    grantee = str(grant.get("GranteePrincipal", ""))
    ours = grantee == account or grantee.startswith(f"arn:{partition}:iam::{account}:")
    return ours and GRANT_OPERATIONS <= set(grant.get("Operations", []))


# -- copy_snapshot and cleanup: the share ------------------------------------------------------------------
def share(ctx: StepContext) -> None:
    """Share the source snapshot with the target account (RDS's `restore` attribute; adding an account
    already there changes nothing). Recorded first: cleanup un-shares even if this step dies after it."""
    config = ctx.config
    if not config.source_account_id:
        return
    account = ctx.outputs.get("source_shared_with") or target_account(ctx)
    ctx.outputs["source_shared_with"] = account
    _modify_share(ctx, {"ValuesToAdd": [account]})


def unshare(ctx: StepContext) -> bool:
    """Stop sharing the source snapshot with the target account, when this operation shared it; whether it
    did. The copy, in the target account, no longer needs it."""
    account = ctx.outputs.get("source_shared_with")
    if not ctx.config.source_account_id or not account:
        return False
    _modify_share(ctx, {"ValuesToRemove": [account]})
    return True


def _modify_share(ctx: StepContext, change: dict[str, list[str]]) -> None:
    config, name = ctx.config, ctx.outputs["snapshot_name"]
    source = aws.client("rds", config.source_region, credentials=credentials(ctx))
    try:
        source.modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=name, AttributeName="restore", **change
        )
    except ClientError as exc:
        if "ValuesToRemove" in change and aws.error_code(exc) == "DBClusterSnapshotNotFoundFault":
            return  # deleted in the source account meanwhile: shared with no one
        raise AwsError(
            f"changing who snapshot {name} of account {config.source_account_id} is shared with:"
            f" {aws.error_code(exc)}",
            retryable=aws.is_transient(exc),
        ) from exc
