"""A whole restore on the local runtime under the realistic RDS profile: RDS on a bad day, a real account's
fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import psycopg2
import pytest

from aurora_restore.local.runtime import DATABASE, SOURCE_CLUSTER, TARGET_CLUSTER, LocalRuntime
from functions.sequence import RUNBOOK

pytestmark = pytest.mark.e2e


def test_the_realistic_profile_completes_a_restore(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given the local runtime with the realistic RDS profile
    runtime = start_runtime(rds="realistic")
    assert runtime.postgres is not None and runtime.simulator is not None
    # whose existing target's database answers the credentials in the master secret, as a real account's
    secret = json.loads(
        runtime.client("secretsmanager").get_secret_value(SecretId=runtime.names.master_secret_id)[
            "SecretString"
        ]
    )
    before = psycopg2.connect(
        host="127.0.0.1",
        port=runtime.postgres.port,
        dbname=DATABASE,
        user=secret["username"],
        password=secret["password"],
    )
    before.close()

    # When a restore is started with one put-events
    runtime.put_restore_requested("e2e-realistic", date.today())
    state = runtime.wait_for("e2e-realistic", timeout=150)

    # Then it completes through all ten steps
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])
    assert [entry.step for entry in state.history if entry.outcome == "success"] == [
        step.value for step in RUNBOOK
    ]
    # though RDS refused the writer while the cluster reset its master credentials
    assert runtime.simulator.refused["create_db_instance: InvalidDBClusterStateFault"] >= 1
    # and each mutating call it accepted was made once
    copy = f"{SOURCE_CLUSTER}-snapshot-{date.today()}-copy"
    resources = {TARGET_CLUSTER, f"{TARGET_CLUSTER}-writer", f"{TARGET_CLUSTER}-instance-1", copy}
    calls = runtime.simulator.mutating_calls(resources)
    assert set(calls.values()) == {1}, calls
    # and the restored database answers the same credentials
    after = psycopg2.connect(
        host="127.0.0.1",
        port=runtime.postgres.port,
        dbname=DATABASE,
        user=secret["username"],
        password=secret["password"],
    )
    after.close()
