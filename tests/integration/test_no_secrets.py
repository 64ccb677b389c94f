"""No password reaches a log line, a state item, an event, a notification or a step record in S3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integration.world import RUNBOOK_USERS, STEP_MODULES, World

pytestmark = pytest.mark.integration


def leaks(passwords: list[str], **places: str) -> list[str]:
    """Which place holds which password."""
    return [
        f"{password!r} in {place}"
        for place, text in places.items()
        for password in passwords
        if password in text
    ]


def everything_written(world: World, responses: list[dict[str, Any]], log_text: str) -> dict[str, str]:
    return {
        "logs": log_text,
        "state table": json.dumps(world.table_items()),
        "events": json.dumps(world.published()),
        "s3 step records": json.dumps(world.log_objects()),
        "notifications": json.dumps(world.notifications()),
        "responses": json.dumps(responses),
    }


def test_a_whole_restore_writes_no_password_anywhere(world: World, captured_logs: Any) -> None:
    # Given the runbook's users (literal passwords in a String parameter) and the master secret
    passwords = [user["password"] for user in RUNBOOK_USERS] + [world.master_password]

    # When the whole runbook runs, waiting steps included
    responses: list[dict[str, Any]] = []
    for step in STEP_MODULES:
        for _ in range(5):
            response = world.run(step)
            responses.append(response)
            assert response["status"] == "success", response
            if response["next_step"] != step:
                break

    # Then the operation completed with step records in S3 and events on the bus
    state = world.state()
    assert state is not None and state["status"] == "completed"
    places = everything_written(world, responses, captured_logs.text)
    assert len(world.log_objects()) >= len(STEP_MODULES)
    assert world.published_of("OperationFinished")
    assert "Snapshot exists" in captured_logs.text
    # And no password is in any of them
    assert leaks(passwords, **places) == []
    # And the literal passwords in a String parameter were warned about, by name, without the value
    assert "literal passwords for app_user, readonly_user" in captured_logs.text


def test_a_failed_step_writes_no_password_anywhere(world: World, captured_logs: Any) -> None:
    # Given a users parameter whose second user is invalid, with a password next to its bad name
    bad = {"username": "Bad Name", "password": "bad-user-password-1", "privileges": ["SELECT"]}
    world.put_db_users([RUNBOOK_USERS[0], bad])
    world.seed_operation("dev-restore-leak-check", "setup_db_users")

    # When setup_db_users fails on it
    response = world.invoke("setup_db_users", {"operation_id": "dev-restore-leak-check"})

    # Then the failure is recorded and published
    assert response["status"] == "error"
    assert world.published_of("StepFailed")
    # And neither password is in the response, the logs, the state, the events or S3
    places = everything_written(world, [response], captured_logs.text)
    assert leaks(["bad-user-password-1", "app_password", world.master_password], **places) == []


def test_a_database_login_failure_writes_no_password_anywhere(world: World, captured_logs: Any) -> None:
    # Given the master secret holds a password the database does not accept
    wrong = "not-the-master-password-42"
    world.client("secretsmanager").put_secret_value(
        SecretId=world.config["master_credentials_secret_id"],
        SecretString=json.dumps({"username": "postgres", "password": wrong}),
    )
    world.seed_operation("dev-restore-login-check", "setup_db_users")

    # When setup_db_users cannot log in
    response = world.invoke("setup_db_users", {"operation_id": "dev-restore-login-check"})

    # Then the error says so without the password
    assert response["status"] == "error"
    assert "cannot connect" in response["message"]
    places = everything_written(world, [response], captured_logs.text)
    assert leaks([wrong, world.master_password, "app_password"], **places) == []


@pytest.mark.parametrize(
    "operation_id", ["dev-restore-refused", "not an operation id"], ids=["usable", "unusable"]
)
def test_a_refused_request_writes_no_password_anywhere(
    world: World, captured_logs: Any, operation_id: str
) -> None:
    # Given a RestoreRequested that does not validate (a bad date), with passwords among its overrides: under
    # keys that say so, pasted in place of a secret id, and in a DSN
    from integration.test_idempotency import bus_event

    passwords = ["pw-in-the-request-1", "Pasted-Secret-Value-2", "pw-in-a-dsn-3"]
    detail = {
        "operation_id": operation_id,
        "target_date": "2023-13-45",
        "overrides": {
            "master_password": passwords[0],
            "master_credentials_secret_id": passwords[1],
            "log_prefix": f"postgresql://admin:{passwords[2]}@db:5432/app",
        },
    }

    # When snapshot_check refuses it and notify_completion tells the subscribers
    responses = [world.invoke("snapshot_check", bus_event("RestoreRequested", detail))]
    for detail_type in ("StepFailed", "RequestRejected"):
        for event in world.published_of(detail_type):
            responses.append(world.invoke("notify_completion", bus_event(detail_type, event)))

    # Then the subscribers were told, and no password is in the logs, the state, the events or the notices
    assert len(world.notifications()) == 1
    places = everything_written(world, responses, captured_logs.text)
    assert leaks(passwords, **places) == []
