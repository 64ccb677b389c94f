"""The swap strategy in the stack: swap_clusters' function, rules, role and alarms; the other steps' roles
widened to the names a swap gives (`<target>-new-<hash>`, `<target>-old-<hash>`); `strategy` in the SSM
configuration."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest
from pulumi_harness import ACCOUNT, ROOT, SECRET_DB_USERS, ProgramRun, run_program, stack_config

from functions.identifiers import swap_names, writer_id
from functions.routes import FUNCTIONS, build_routes, routes_for
from infra.settings import StackConfigError, validate_restore
from schemas.config import MAX_SWAP_TARGET_CLUSTER_ID, RestoreConfig
from schemas.rds_event_ids import CLUSTER_RENAMED

pytestmark = pytest.mark.infra

FUNCTION = "aws:lambda/function:Function"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
STACKS = {"dev": ("us-west-2", "dev-target-cluster"), "staging": ("eu-west-1", "staging-cluster")}
OPERATION = "refresh-2026-12-07"


def statements(run: ProgramRun, function: str) -> list[dict[str, Any]]:
    name = f"aurora-restore-{function.replace('_', '-')}-{run.stack}-least-privilege"
    document = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", name=name).inputs["policy"])
    return list(document["Statement"])


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allows(run: ProgramRun, function: str, action: str, arn: str) -> bool:
    """Whether a statement of the function's policy grants `action` on `arn` (IAM's `*` and `?` wildcards)."""
    return any(
        action in listed(statement["Action"])
        and any(fnmatchcase(arn, pattern) for pattern in listed(statement["Resource"]))
        for statement in statements(run, function)
    )


def rds(run: ProgramRun, kind: str, name: str) -> str:
    return f"arn:aws:rds:{run.region}:{ACCOUNT}:{kind}:{name}"


# -- the function ---------------------------------------------------------------------------------------
def test_swap_clusters_is_a_function_of_its_own_with_its_role_logs_and_error_alarm(dev: ProgramRun) -> None:
    # Given the dev stack
    # When the program has run
    function = dev.one(FUNCTION, name="aurora-restore-swap-clusters-dev").inputs
    # Then swap_clusters runs its handler, as an API-only step outside the VPC, with its own role
    assert "swap_clusters" in FUNCTIONS
    assert function["handler"] == "functions.swap_clusters.handler"
    assert (function["memorySize"], function["timeout"]) == (256, 60)
    assert "vpcConfig" not in function
    assert function["role"] == f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-swap-clusters-dev"
    dev.one("aws:iam/role:Role", name="aurora-restore-swap-clusters-dev")
    assert function["loggingConfig"]["logGroup"] == "/aws/lambda/aurora-restore-swap-clusters-dev"
    # and its errors raise the alarm to the alerts topic, as every step's do
    alarm = dev.one(ALARM, name="aurora-restore-swap-clusters-dev-errors").inputs
    assert alarm["dimensions"] == {"FunctionName": "aurora-restore-swap-clusters-dev"}
    assert alarm["alarmActions"] == [f"arn:aws:sns:us-west-2:{ACCOUNT}:aurora-restore-alerts-dev"]
    # and the overdue-waits alarm (the reconciler's, for every wait) and the dashboard cover it
    overdue = dev.one(ALARM, name="aurora-restore-overdue-waits-dev").inputs
    assert "switch" in overdue["alarmDescription"]
    dashboard = dev.one("aws:cloudwatch/dashboard:Dashboard", dashboardName="aurora-restore-dashboard-dev")
    assert "aurora-restore-swap-clusters-dev" in dashboard.inputs["dashboardBody"]
    assert dev.outputs["function_names"]["swap_clusters"] == "aurora-restore-swap-clusters-dev"


# -- its rules ------------------------------------------------------------------------------------------
def test_every_function_gets_exactly_the_rules_its_routes_name(dev: ProgramRun) -> None:
    # Given the dev stack
    # When the program has run
    targets = {target.inputs["rule"]: target.inputs["arn"] for target in dev.of_type(TARGET)}
    # Then each function is the target of the rules of its routes, and of no other
    for function in FUNCTIONS:
        arn = f"arn:aws:lambda:us-west-2:{ACCOUNT}:aurora-restore-{function.replace('_', '-')}-dev"
        expected = {f"aurora-restore-{route.name}-dev" for route in routes_for(function, "us-west-2")}
        if function == "reconcile":
            expected.add("aurora-restore-reconcile-schedule-dev")
        assert {rule for rule, target in targets.items() if target == arn} == expected, function


def test_swap_clusters_is_started_by_its_step_its_recheck_and_rds_rename_events(dev: ProgramRun) -> None:
    # Given the dev stack
    # When the program has run
    rules = {
        route.name: dev.one(RULE, name=f"aurora-restore-{route.name}-dev").inputs
        for route in routes_for("swap_clusters", "us-west-2")
    }
    # Then its three routes are rules: two on the environment's bus, the rename on the default bus
    assert set(rules) == {"to-swap-clusters", "recheck-swap-clusters", "rds-renamed"}
    assert rules["to-swap-clusters"]["eventBusName"] == "aurora-restore-dev"
    assert rules["recheck-swap-clusters"]["eventBusName"] == "aurora-restore-dev"
    assert "eventBusName" not in rules["rds-renamed"]
    step = json.loads(rules["to-swap-clusters"]["eventPattern"])
    assert step["detail"] == {"next_step": ["swap_clusters"]}
    recheck = json.loads(rules["recheck-swap-clusters"]["eventPattern"])
    assert recheck["detail-type"] == ["RecheckDue"] and recheck["detail"] == {"step": ["swap_clusters"]}
    # and the rename rule takes RDS-EVENT-0172 of the target region's clusters, nothing else
    from moto.events.models import EventPattern

    pattern = EventPattern.load(rules["rds-renamed"]["eventPattern"])

    def renamed(event_id: str = CLUSTER_RENAMED, region: str = "us-west-2") -> dict[str, Any]:
        return {
            "source": "aws.rds",
            "detail-type": "RDS DB Cluster Event",
            "detail": {
                "EventID": event_id,
                "SourceIdentifier": "dev-target-cluster",
                "SourceArn": f"arn:aws:rds:{region}:{ACCOUNT}:cluster:dev-target-cluster",
            },
        }

    assert pattern.matches_event(renamed())
    assert not pattern.matches_event(renamed(region="eu-west-1"))
    assert not pattern.matches_event(renamed(event_id="RDS-EVENT-0171"))
    assert len(dev.of_type(RULE)) == len(build_routes()) + 2  # + the schedule and the failed-operation alert


# -- its role -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_swap_clusters_may_rename_exactly_the_target_the_restored_and_the_old_cluster(
    stack: str, request: pytest.FixtureRequest
) -> None:
    # Given a stack
    run: ProgramRun = request.getfixturevalue(stack)
    target = STACKS[stack][1]
    # When the program has run
    found = statements(run, "swap_clusters")
    # Then ModifyDBCluster (the rename) and the describe name exactly the three clusters a swap renames
    three = [rds(run, "cluster", name) for name in (target, f"{target}-new-*", f"{target}-old-*")]
    for action in ("rds:ModifyDBCluster", "rds:DescribeDBClusters"):
        (holding,) = [s for s in found if action in listed(s["Action"])]
        assert sorted(listed(holding["Resource"])) == sorted(three), action
        assert "Condition" not in holding
    # and nothing of it is granted on "*"
    assert all("*" not in listed(s["Resource"]) for s in found)
    # and the names this operation's swap gives are covered, others are not
    new, old = swap_names(target, OPERATION)
    for name in (target, new, old):
        assert allows(run, "swap_clusters", "rds:ModifyDBCluster", rds(run, "cluster", name)), name
    for name in (f"{target}2", f"{target}-newer", f"{target}-older", "prod-cluster", f"x-{target}"):
        assert not allows(run, "swap_clusters", "rds:ModifyDBCluster", rds(run, "cluster", name)), name
    # and besides the engine's (state, events, logs, wake-ups) it holds no other RDS or destructive action
    rds_actions = {a for s in found for a in listed(s["Action"]) if a.startswith("rds:")}
    assert rds_actions == {"rds:ModifyDBCluster", "rds:DescribeDBClusters"}
    sids = {s["Sid"] for s in found}
    assert {"StateTable", "PublishEvents", "WakeUps", "PassWakeUpRole", "ConfigParameter"} <= sids


# -- the other steps under swap -------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_the_steps_before_and_after_the_switch_may_act_on_the_names_a_swap_gives(
    stack: str, request: pytest.FixtureRequest
) -> None:
    # Given a stack, and the names an operation's swap gives
    run: ProgramRun = request.getfixturevalue(stack)
    target = STACKS[stack][1]
    new, old = swap_names(target, OPERATION)
    cluster = {name: rds(run, "cluster", name) for name in (target, new, old)}
    # When the program has run
    # Then restore_snapshot restores (and tags) beside the target
    for action in ("rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource", "rds:DescribeDBClusters"):
        assert allows(run, "restore_snapshot", action, cluster[new]), action
        assert not allows(run, "restore_snapshot", action, cluster[old]), action
    # and check_restore_status sets up the new cluster and creates its writer
    for action in ("rds:ModifyDBCluster", "rds:AddTagsToResource", "rds:DescribeDBClusters"):
        assert allows(run, "check_restore_status", action, cluster[new]), action
    writer = rds(run, "db", writer_id(new))
    for action in ("rds:CreateDBInstance", "rds:DescribeDBInstances"):
        assert allows(run, "check_restore_status", action, writer), action
    assert allows(run, "check_restore_status", "rds:CreateDBInstance", cluster[new])
    assert not allows(run, "check_restore_status", "rds:ModifyDBCluster", cluster[old])
    # and the database steps find the new cluster's endpoint
    for function in ("mask_data", "setup_db_users", "verify_restore"):
        assert allows(run, function, "rds:DescribeDBClusters", cluster[new]), function
    # and delete_rds deletes the old target renamed away, with its writer of either name ...
    for action in ("rds:DeleteDBCluster", "rds:ModifyDBCluster", "rds:DescribeDBClusters"):
        assert allows(run, "delete_rds", action, cluster[old]), action
    for instance in (writer_id(target), writer_id(swap_names(target, "an-earlier-refresh")[0])):
        assert allows(run, "delete_rds", "rds:DeleteDBInstance", rds(run, "db", instance)), instance
    # ... but never the cluster restored beside it
    for action in ("rds:DeleteDBCluster", "rds:ModifyDBCluster"):
        assert not allows(run, "delete_rds", action, cluster[new]), action
    # and the replace strategy's names are all still covered
    assert allows(run, "restore_snapshot", "rds:RestoreDBClusterFromSnapshot", cluster[target])
    assert allows(run, "check_restore_status", "rds:CreateDBInstance", rds(run, "db", writer_id(target)))
    assert allows(run, "delete_rds", "rds:DeleteDBCluster", cluster[target])


def test_a_final_snapshot_may_be_taken_of_the_old_target_renamed_away(staging: ProgramRun) -> None:
    # Given the staging example (final_snapshot: true), under swap
    _, old = swap_names("staging-cluster", OPERATION)
    # When the program has run
    # Then delete_rds may snapshot the renamed old target, into the target's own final snapshots
    assert allows(staging, "delete_rds", "rds:CreateDBClusterSnapshot", rds(staging, "cluster", old))
    final = rds(staging, "cluster-snapshot", f"staging-cluster-final-{OPERATION}")
    assert allows(staging, "delete_rds", "rds:CreateDBClusterSnapshot", final)
    assert allows(staging, "delete_rds", "rds:DeleteDBCluster", final)


# -- strategy in the stack's restore configuration ------------------------------------------------------
def config_document(run: ProgramRun) -> dict[str, Any]:
    name = f"/aurora-restore/{run.stack}/config"
    return dict(json.loads(run.one("aws:ssm/parameter:Parameter", name=name).inputs["insecureValue"]))


def test_the_stacks_strategy_reaches_the_ssm_configuration(dev: ProgramRun, staging: ProgramRun) -> None:
    # Given the dev stack (replace) and the staging example (swap)
    # When the programs have run
    # Then each one's strategy is in its configuration document, as the functions read it
    assert config_document(dev)["strategy"] == "replace"
    assert config_document(staging)["strategy"] == "swap"
    assert RestoreConfig.model_validate(config_document(staging)).strategy == "swap"


def test_a_stack_without_a_strategy_replaces() -> None:
    # Given the dev stack with no strategy in its restore configuration
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    restore = json.loads(config["aurora-restore:restore"])
    del restore["strategy"]
    config["aurora-restore:restore"] = json.dumps(restore)
    # When the program has run
    run = run_program("dev", config, secret_keys)
    # Then the document names none, and the functions take the default: replace
    document = config_document(run)
    assert "strategy" not in document
    assert RestoreConfig.model_validate(document).strategy == "replace"
    # and swap_clusters is deployed all the same: a request's overrides may ask for swap
    run.one(FUNCTION, name="aurora-restore-swap-clusters-dev")


def test_a_strategy_the_functions_would_refuse_is_refused_before_deploying() -> None:
    config, _ = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    restore = json.loads(config["aurora-restore:restore"])
    with pytest.raises(StackConfigError, match="strategy"):
        validate_restore(restore | {"strategy": "blue-green"})
    long_target = "t" * (MAX_SWAP_TARGET_CLUSTER_ID + 1)
    with pytest.raises(StackConfigError, match="swap"):
        validate_restore(restore | {"strategy": "swap", "target_cluster_id": long_target})
    assert validate_restore(restore | {"target_cluster_id": long_target})["strategy"] == "replace"
