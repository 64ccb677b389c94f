"""What the functions' policies name: the stack's resources as plain strings, and their ARNs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.config import SWAP_NEW_INFIX, SWAP_OLD_INFIX, WRITER_SUFFIX


@dataclass(frozen=True)
class PolicyRefs:
    """Everything a policy names, as plain strings (resolved from the stack's resources)."""

    account: str
    region: str
    source_region: str
    table_arn: str
    bus_arn: str
    config_parameter_arn: str
    db_users_parameter_arn: str
    bucket_name: str
    log_prefix: str
    topic_arn: str
    queue_arn: str
    failure_queue_arn: str
    key_arn: str
    log_group_arn: str
    target_cluster_id: str
    source_cluster_id: str
    target_subnet_group: str
    master_secret_id: str
    user_secret_ids: tuple[str, ...] = ()
    restore_kms_key_id: str | None = None
    extra_kms_key_arns: tuple[str, ...] = ()
    target_instance_ids: tuple[str, ...] = ()
    final_snapshot: bool = False
    final_snapshots_kept: bool = False  # cleanup deletes the older final snapshots
    in_vpc: bool = False
    tracing: bool = False
    partition: str = "aws"
    environment: str = ""
    wakeup_role_arn: str = ""
    masking_key_secret_id: str | None = None
    post_restore_objects: tuple[str, ...] = ()  # s3:// URIs
    source_role_arn: str = ""  # the role assumed in the source account (source_account_id); "": none

    # -- ARNs -----------------------------------------------------------------------------------------
    def rds(self, kind: str, name: str, region: str | None = None) -> str:
        return f"arn:{self.partition}:rds:{region or self.region}:{self.account}:{kind}:{name}"

    @property
    def target_cluster_arn(self) -> str:
        return self.rds("cluster", self.target_cluster_id)

    @property
    def target_instance_arns(self) -> list[str]:
        """The target's instances: `<target_cluster_id>-*` (the writer we create is `<id>-writer`)."""
        named = [self.rds("db", f"{self.target_cluster_id}-*")]
        return named + [self.rds("db", instance_id) for instance_id in self.target_instance_ids]

    @property
    def writer_arn(self) -> str:
        return self.rds("db", f"{self.target_cluster_id}-writer")

    # -- the swap strategy's names (functions.identifiers.swap_names): the strategy may be set per request,
    # so every stack's policies cover them, whatever its own default.
    @property
    def restored_cluster_arn(self) -> str:
        """`<target>-new-<hash>`: the cluster a swap restores beside the target."""
        return self.rds("cluster", f"{self.target_cluster_id}{SWAP_NEW_INFIX}*")

    @property
    def restored_writer_arn(self) -> str:
        """`<target>-new-<hash>-writer`: the writer check_restore_status creates for it."""
        return self.rds("db", f"{self.target_cluster_id}{SWAP_NEW_INFIX}*{WRITER_SUFFIX}")

    @property
    def old_cluster_arn(self) -> str:
        """`<target>-old-<hash>`: the old target once swap_clusters renamed it away (delete_rds deletes it)."""
        return self.rds("cluster", f"{self.target_cluster_id}{SWAP_OLD_INFIX}*")

    @property
    def copy_snapshot_arn(self) -> str:
        # copy_snapshot names its copy `<source snapshot>-copy` (functions/steps/snapshot.py).
        return self.rds("cluster-snapshot", "*-copy")

    def secret_arn(self, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        # Secrets Manager appends six random characters to a secret's name in its ARN.
        return f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:{secret_id}-??????"

    @property
    def master_secret_arn(self) -> str:
        return self.secret_arn(self.master_secret_id)

    @property
    def user_secret_arns(self) -> list[str]:
        return [self.secret_arn(secret_id) for secret_id in self.user_secret_ids]

    def kms_key_resources(self, key_id: str) -> tuple[str, dict[str, Any] | None]:
        """The resource (and condition) granting use of a key named by key ARN, key id, alias name or alias
        ARN. An alias is not a key: IAM grants use of a key on the key's ARN, and an alias ARN as the
        resource would only cover the alias itself. So an alias is granted as any key of the alias's own
        region and account that carries it (kms:ResourceAliases, which every key operation we grant takes:
        https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html). An alias ARN
        names its region and account (a source-region key's); an alias name or a key id alone is the
        target region's."""
        if key_id.startswith("arn:"):
            _, partition, _, region, account, resource = key_id.split(":", 5)
            if not resource.startswith("alias/"):
                return key_id, None
            return f"arn:{partition}:kms:{region}:{account}:key/*", _aliased(resource)
        if key_id.startswith("alias/"):
            return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/*", _aliased(key_id)
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key_id}", None


def _aliased(alias: str) -> dict[str, Any]:
    """Any key that `alias` (alias/<name>) points at, whichever alias the request named it by."""
    return {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
