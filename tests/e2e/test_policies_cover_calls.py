"""Every AWS call a function's code can make is an action its IAM policy allows: infra/policies.py is
written from reading the code, and this checks the reading twice. Statically, for every call the code can
reach (tests/e2e/step_calls.py reads it from the syntax trees into the reviewed table STEP_CALLS, which
must be exactly that), whether a run makes it or not; and in a run, for every call a whole restore and a
failed one make on the local runtime, which must also be in the table."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from datetime import date
from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from e2e import step_calls
from e2e.test_failure_path import USER_SECRET, break_setup_db_users

from aurora_restore.local.runtime import LocalRuntime
from aurora_restore.local.world import EMAIL_MASKING
from functions import aws
from functions.observability import logger
from functions.routes import FUNCTIONS, RECONCILE
from infra.policies import PolicyRefs, function_policy
from infra.source_account import ASSUMING_STEPS, SourceRoleArgs, role_policy
from schemas.common import Step

SCRIPTS = "dev-sql-scripts"
REFS = PolicyRefs(
    account="123456789012",
    region="us-west-2",
    source_region="us-east-1",
    table_arn="arn:aws:dynamodb:us-west-2:123456789012:table/aurora-restore-state-dev",
    bus_arn="arn:aws:events:us-west-2:123456789012:event-bus/aurora-restore-dev",
    config_parameter_arn="arn:aws:ssm:us-west-2:123456789012:parameter/aurora-restore/dev/config",
    db_users_parameter_arn="arn:aws:ssm:us-west-2:123456789012:parameter/aurora-restore/dev/db_users",
    bucket_name="dev-aurora-restore-logs",
    log_prefix="aurora-restore-logs",
    topic_arn="arn:aws:sns:us-west-2:123456789012:dev-notifications",
    queue_arn="arn:aws:sqs:us-west-2:123456789012:dev-notifications",
    failure_queue_arn="arn:aws:sqs:us-west-2:123456789012:aurora-restore-failed-dev",
    key_arn="arn:aws:kms:us-west-2:123456789012:key/x",
    log_group_arn="arn:aws:logs:us-west-2:123456789012:log-group:/aws/lambda/x",
    target_cluster_id="dev-target-cluster",
    source_cluster_id="dev-source-cluster",
    target_subnet_group="dev-subnet-group",
    master_secret_id="dev/master-credentials",
    environment="dev",
    final_snapshot=True,
    final_snapshots_kept=True,
    restore_kms_key_id="arn:aws:kms:us-west-2:123456789012:key/restore",  # every option on: the key too
    wakeup_role_arn="arn:aws:iam::123456789012:role/aurora-restore-wakeups-dev",
    masking_key_secret_id="aurora-restore/dev/masking-key",
    post_restore_objects=("s3://dev-sql-scripts/after.sql",),  # a script configured: S3 too
    source_role_arn="arn:aws:iam::111111111111:role/aurora-restore-source-dev",  # a cross-account source
)
SOURCE_ROLE = SourceRoleArgs(
    environment="dev",
    target_account_id="123456789012",
    external_id="the-external-id",
    source_cluster_id="dev-source-cluster",
    source_region="us-east-1",
    source_account_id="111111111111",
)


def allowed(function: str) -> set[str]:
    actions: set[str] = set()
    for statement in function_policy(function, REFS)["Statement"]:
        found = statement["Action"]
        actions.update([found] if isinstance(found, str) else found)
    return actions


class Calls:
    """Each AWS call the functions make, by the step (or the reconciler) whose invocation made it."""

    def __init__(self) -> None:
        self.by_function: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def record(self, model: Any, **_: Any) -> None:
        step = logger.thread_safe_get_current_keys().get("step")
        if not step:
            return  # the test's own calls, the CLI's
        action = f"{model.service_model.signing_name}:{model.name}"
        with self._lock:
            self.by_function.setdefault(str(step), set()).add(action)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every client the functions make from now on reports its calls."""
    recorded = Calls()
    make = aws.client

    def client(service: str, region: str | None = None, **credentials: Any) -> Any:
        found = make(service, region, **credentials)
        if not getattr(found, "_policy_calls_hooked", False):
            found.meta.events.register("before-call", recorded.record)
            found._policy_calls_hooked = True
        return found

    monkeypatch.setattr(aws, "client", client)
    return recorded


@pytest.mark.e2e
def test_every_call_of_a_restore_and_a_failure_is_in_the_functions_policy(
    start_runtime: Callable[..., LocalRuntime], calls: Calls
) -> None:
    # Given the local runtime keeping a bounded number of final snapshots, then a whole restore, another under
    # the swap strategy (so that swap_clusters makes its calls, and the other steps theirs on the swap's
    # names), and a third one failing at setup_db_users (a user's secret gone after the start), so that the
    # failure path's calls are made too
    # and masking with a post-restore script, so that mask_data makes its calls too
    script = b"UPDATE public.products SET price_cents = price_cents;"
    masking = {
        **EMAIL_MASKING,
        "post_restore_sql": [
            {"uri": f"s3://{SCRIPTS}/after.sql", "sha256": hashlib.sha256(script).hexdigest()}
        ],
    }
    runtime = start_runtime(config_overrides={"final_snapshot": True, "final_snapshots_kept": 1, **masking})
    s3 = runtime.client("s3")
    s3.create_bucket(Bucket=SCRIPTS, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket=SCRIPTS, Key="after.sql", Body=script)
    runtime.put_restore_requested("policy-complete", date.today())
    state = runtime.wait_for("policy-complete", timeout=90)
    assert state is not None and state.status == "completed", state
    runtime.put_restore_requested("policy-swap", date.today(), {"strategy": "swap"})
    swapped = runtime.wait_for("policy-swap", timeout=90)
    assert swapped is not None and swapped.status == "completed", swapped
    break_setup_db_users(runtime)
    runtime.put_restore_requested("policy-failed", date.today())
    runtime.wait_for_step("policy-failed", "snapshot_check")
    runtime.client("secretsmanager").delete_secret(SecretId=USER_SECRET, ForceDeleteWithoutRecovery=True)
    failed = runtime.wait_for("policy-failed", timeout=90)
    assert failed is not None and (failed.status, failed.failed_step) == ("failed", "setup_db_users"), failed

    # Then every step made calls, and each of them is an action its function's policy allows
    assert set(calls.by_function) >= {step.value for step in Step}
    beyond = {
        function: sorted(actions - allowed(function))
        for function, actions in calls.by_function.items()
        if actions - allowed(function)
    }
    assert beyond == {}, beyond
    # and the static table names each of them: it leaves out nothing a run makes
    unread = {
        function: sorted(actions - can_call(function))
        for function, actions in calls.by_function.items()
        if actions - can_call(function)
    }
    assert unread == {}, unread


# -- every call the code can make, read from it ----------------------------------------------------------
# Reviewed against the code: what the engine around any step can call (functions/engine/ and
# functions/handler.py): the state item and the resource index, the bus, the step record, the config
# document, the wake-ups and the watchdog.
ENGINE_CALLS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "events:PutEvents",
    "s3:PutObject",
    "ssm:GetParameter",
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "iam:PassRole",
}
# What each step's own logic can call (functions/steps/*.py and the adapters it names), and the reconciler
# with the engine modules it imports. API operations by name, and what AWS does on the function's behalf.
STEP_CALLS: dict[str, set[str]] = {
    "snapshot_check": {
        "rds:DescribeDBClusterSnapshots",  # by name, then the source cluster's (find_snapshot_for_date)
        "rds:DescribeDBSubnetGroups",
        "ec2:DescribeSecurityGroups",
        "rds:DescribeOrderableDBInstanceOptions",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",  # the DB users (SecureString)
        "kms:Decrypt",
        "kms:DescribeKey",  # kms_key_id checked in the target region (target_checks.kms_key)
        "dynamodb:GetItem",  # the lease and its holder
        "dynamodb:PutItem",
        # functions.target_settings: the target and its writer, and the parameter groups' families
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusterParameterGroups",
        "rds:DescribeDBParameterGroups",
        # functions.source_account, a cross-account source: the role assumed, the snapshot's key checked
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
        "kms:GetKeyPolicy",
        "kms:ListGrants",
    },
    "copy_snapshot": {
        "rds:CopyDBClusterSnapshot",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        # functions.source_account.share, a cross-account source
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
        "rds:ModifyDBClusterSnapshotAttribute",
    },
    "check_copy_status": {"rds:DescribeDBClusterSnapshots"},
    "delete_rds": {
        "rds:DescribeDBClusters",
        "rds:DeleteDBInstance",
        "rds:ModifyDBCluster",  # deletion protection off
        "rds:DeleteDBCluster",
        "dynamodb:GetItem",  # the lease's holder
        "dynamodb:PutItem",  # the resource index
    },
    "restore_snapshot": {"rds:RestoreDBClusterFromSnapshot", "rds:DescribeDBClusters", "dynamodb:PutItem"},
    "check_restore_status": {
        "rds:DescribeDBClusters",
        "rds:ModifyDBCluster",  # the master password
        "rds:AddTagsToResource",
        "rds:CreateDBInstance",
        "rds:DescribeDBInstances",
        "secretsmanager:GetSecretValue",
        # release_copy: leave the copy, delete it with its last user, look it up when the delete found none
        "rds:DeleteDBClusterSnapshot",
        "rds:DescribeDBClusterSnapshots",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",  # the resource index
    },
    "swap_clusters": {
        "rds:DescribeDBClusters",  # which cluster holds the target's name, the new and the old name
        "rds:ModifyDBCluster",  # functions.steps.swap.rename_cluster: NewDBClusterIdentifier, both ways
        "dynamodb:PutItem",  # the resource index (both names, before each rename)
    },
    "setup_db_users": {
        "rds:DescribeDBClusters",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "kms:Decrypt",
    },
    "notify_completion": {
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "sqs:SendMessage",
        "dynamodb:PutItem",  # the SNS message id, written before SQS is asked
        "ssm:GetParameter",  # a RequestRejected's notice: the configuration from the environment and SSM
    },
    "cleanup": {
        "rds:DeleteDBClusterSnapshot",
        "rds:DescribeDBClusterSnapshots",  # the copy, and the target's final snapshots (pruning)
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",  # the copy's count, the lease
        "dynamodb:GetItem",
        "s3:ListObjectsV2",
        "s3:DeleteObjects",
        "sts:AssumeRole",  # functions.source_account.unshare, a cross-account source
        "rds:ModifyDBClusterSnapshotAttribute",
    },
    RECONCILE: {
        "dynamodb:Scan",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "events:PutEvents",
        "s3:PutObject",
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "iam:PassRole",
    },
}
STEP_CALLS["verify_restore"] = STEP_CALLS["setup_db_users"]
# mask_data: the endpoint and master password (as the database steps), the masking key, the scripts.
STEP_CALLS["mask_data"] = {"rds:DescribeDBClusters", "secretsmanager:GetSecretValue", "s3:GetObject"}
# Calls AWS makes with the function's credentials on its behalf, by the function that causes them.
ON_ITS_BEHALF = {
    "functions.config:load_db_users": {"kms:Decrypt"},  # GetParameter WithDecryption of a SecureString
    "functions.notify:send": {"kms:GenerateDataKey", "kms:Decrypt"},  # publishing to a KMS-encrypted topic
    "functions.wakeup:_put": {"iam:PassRole"},  # the schedule's target role
}
# Calls made with the source role's credentials (functions/source_account.py), by the function making them:
# authorized by that role's policy in the source account (infra/source_account.py), not the function's.
# The source's snapshots are found through it too (its RdsAdapter).
THROUGH_SOURCE_ROLE = {
    "snapshot_check": {
        "rds:DescribeDBClusterSnapshots",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:ListGrants",
    },
    "copy_snapshot": {"rds:ModifyDBClusterSnapshotAttribute"},
    "cleanup": {"rds:ModifyDBClusterSnapshotAttribute"},
}
# Calls IAM never refuses: "No permissions are required to perform this operation"
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}
# IAM's action where it is not the API operation's name: ListObjectsV2 is authorized as s3:ListBucket and
# DeleteObjects as s3:DeleteObject for each key (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html,
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
IAM_ACTION = {"s3:ListObjectsV2": "s3:ListBucket", "s3:DeleteObjects": "s3:DeleteObject"}


@cache
def operation(service: str, method: str) -> str:
    """The API operation a botocore client method makes, as `<IAM prefix>:<Operation>`."""
    model = botocore.session.get_session().get_service_model(service)
    names = {xform_name(name): name for name in model.operation_names}
    return f"{model.signing_name}:{names[method]}"


def read_calls(entries: Iterable[str]) -> set[str]:
    """Every call the code reachable from `entries` can make, and what AWS does on its behalf."""
    entries = list(entries)
    found = {operation(*call) for call in step_calls.calls_of(entries)}
    for function in step_calls.reached(entries):
        found |= ON_ITS_BEHALF.get(function.key, set())
    return found


def engine_entries(entry: str) -> list[str]:
    return step_calls.module_functions(step_calls.engine_modules(entry))


def can_call(function: str) -> set[str]:
    """What the table says `function`'s code can call: its step's logic and the engine around it."""
    return STEP_CALLS[function] | (ENGINE_CALLS if function != RECONCILE else set())


def test_every_aws_client_in_the_code_is_read_and_the_database_code_calls_none() -> None:
    assert step_calls.unaccounted_clients() == []
    calling = {key.partition(":")[0] for key, found in step_calls.inventory().items() if found.calls}
    assert calling == {
        f"functions.{name}"
        for name in (
            "rds",
            "target_checks",
            "state",
            "wakeup",
            "notify",
            "bus",
            "config",
            "secrets",
            "post_restore",
            "source_account",
        )
    }
    assert set(ON_ITS_BEHALF) <= set(step_calls.inventory())


def test_the_engine_and_each_steps_logic_can_call_exactly_what_the_table_says() -> None:
    assert read_calls(engine_entries("functions.handler")) == ENGINE_CALLS
    assert set(STEP_CALLS) == set(FUNCTIONS)
    read = {
        function: read_calls(engine_entries("functions.reconcile"))
        if function == RECONCILE
        else read_calls(step_calls.step_logic(function))
        for function in FUNCTIONS
    }
    assert {f: sorted(read[f] ^ STEP_CALLS[f]) for f in FUNCTIONS if read[f] != STEP_CALLS[f]} == {}


def test_every_call_in_the_adapters_is_one_a_function_can_make() -> None:
    tabled = set().union(ENGINE_CALLS, *STEP_CALLS.values())
    anywhere = {operation(*call) for found in step_calls.inventory().values() for call in found.calls}
    assert anywhere - tabled == set()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_call_a_functions_code_can_make_is_allowed_by_its_policy(function: str) -> None:
    needed = {IAM_ACTION.get(action, action) for action in can_call(function)} - NO_PERMISSION_NEEDED
    only_as_source_role = THROUGH_SOURCE_ROLE.get(function, set()) - {"rds:DescribeDBClusterSnapshots"}
    assert sorted(needed - only_as_source_role - allowed(function)) == []


@pytest.mark.parametrize("function", sorted(THROUGH_SOURCE_ROLE))
def test_every_call_made_through_the_source_role_is_allowed_by_its_policy(function: str) -> None:
    statements = role_policy(SOURCE_ROLE)["Statement"]
    granted = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert THROUGH_SOURCE_ROLE[function] <= can_call(function)
    assert sorted(THROUGH_SOURCE_ROLE[function] - granted) == []


def test_the_source_role_trusts_exactly_the_functions_that_assume_it() -> None:
    assuming = {function for function, calls in STEP_CALLS.items() if "sts:AssumeRole" in calls}
    assert assuming == set(ASSUMING_STEPS) == set(THROUGH_SOURCE_ROLE)
