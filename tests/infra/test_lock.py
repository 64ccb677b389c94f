"""The locks (`make lock`): every dependency pinned with its hashes, and none behind pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from infra.lock import DEV_LOCK, LOCAL_LOCK
from infra.package import LOCKS, ROOT, locked_versions, runtime_requirements, unlocked

pytestmark = pytest.mark.infra

ALL_LOCKS = (DEV_LOCK, LOCAL_LOCK, *LOCKS.values())


def project_requirements(*extras: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [item for item in wanted if not item.startswith(project["name"])]


@pytest.mark.parametrize("lock", ALL_LOCKS, ids=lambda lock: lock.name)
def test_every_pin_of_a_lock_has_its_hashes(lock: Path) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2])
    assert len(entries) > 5
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+", entry) and "--hash=sha256:" in entry, entry[:200]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (DEV_LOCK, project_requirements("dev", "infra", "local")),
        (LOCAL_LOCK, project_requirements("local")),
        (LOCKS[False], runtime_requirements()),
        (LOCKS[True], runtime_requirements(tracing=True)),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else "",
)
def test_each_lock_pins_what_pyproject_asks_for(lock: Path, requirements: list[str]) -> None:
    # a change to pyproject.toml's dependencies without `make lock` fails here, not in a deployed function
    assert unlocked(requirements, lock) == []


@pytest.mark.parametrize("lock", LOCKS.values(), ids=lambda lock: lock.name)
def test_the_artifacts_lock_ships_botocore_not_boto3_at_the_tested_versions(lock: Path) -> None:
    # botocore ships: the Lambda runtime's own copy varies by runtime version and region
    shipped = locked_versions(lock)
    assert "botocore" in shipped and "boto3" not in shipped
    tested = locked_versions(DEV_LOCK)
    assert {name: tested.get(name) for name in shipped} == shipped


def test_the_botocore_that_ships_knows_schedulers_action_after_completion() -> None:
    """A botocore without it refuses every wake-up's CreateSchedule as an unknown parameter, which
    functions.wakeup takes as a wake-up that could not be scheduled: a warning, and the reconciler's hour."""
    import botocore
    import botocore.session

    # Given the botocore the tests run, which is the one the artifact ships
    assert botocore.__version__ == locked_versions(LOCKS[False])["botocore"]
    # Then its Scheduler model takes ActionAfterCompletion in CreateSchedule (and UpdateSchedule)
    model = botocore.session.get_session().get_service_model("scheduler")
    for name in ("CreateSchedule", "UpdateSchedule"):
        assert "ActionAfterCompletion" in model.operation_model(name).input_shape.members, name


def test_a_requirement_the_lock_lacks_or_pins_outside_its_range_is_named() -> None:
    lock = LOCKS[False]
    assert unlocked(["pydantic>=2.6", "pydantic>=99", "not-locked>=1"], lock) == [
        "pydantic>=99",
        "not-locked>=1",
    ]
