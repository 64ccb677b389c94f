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


def test_the_artifacts_lock_leaves_boto3_to_the_runtime_and_ships_the_tested_versions() -> None:
    shipped = locked_versions(LOCKS[False])
    assert "boto3" not in shipped and "botocore" not in shipped
    tested = locked_versions(DEV_LOCK)
    assert {name: tested.get(name) for name in shipped} == shipped


def test_a_requirement_the_lock_lacks_or_pins_outside_its_range_is_named() -> None:
    lock = LOCKS[False]
    assert unlocked(["pydantic>=2.6", "pydantic>=99", "not-locked>=1"], lock) == [
        "pydantic>=99",
        "not-locked>=1",
    ]
