"""Every AWS call a function makes, on a whole restore and on a failed one, is an action its IAM policy
allows: infra/policies.py is written from reading the code, and this checks the reading."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from e2e.test_failure_path import USER_SECRET, break_setup_db_users

from aurora_restore.local.runtime import LocalRuntime
from functions import aws
from functions.observability import logger
from infra.policies import PolicyRefs, function_policy
from schemas.common import Step

pytestmark = pytest.mark.e2e

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
    wakeup_role_arn="arn:aws:iam::123456789012:role/aurora-restore-wakeups-dev",
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

    def client(service: str, region: str | None = None) -> Any:
        found = make(service, region)
        if not getattr(found, "_policy_calls_hooked", False):
            found.meta.events.register("before-call", recorded.record)
            found._policy_calls_hooked = True
        return found

    monkeypatch.setattr(aws, "client", client)
    return recorded


def test_every_call_of_a_restore_and_a_failure_is_in_the_functions_policy(
    start_runtime: Callable[..., LocalRuntime], calls: Calls
) -> None:
    # Given the local runtime keeping a bounded number of final snapshots, then a whole restore, and a second
    # one failing at setup_db_users (a user's secret gone after the start), so that the failure path's calls
    # are made too
    runtime = start_runtime(config_overrides={"final_snapshot": True, "final_snapshots_kept": 1})
    runtime.put_restore_requested("policy-complete", date.today())
    state = runtime.wait_for("policy-complete", timeout=90)
    assert state is not None and state.status == "completed", state
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
