"""`aurora-restore plan` against `aurora-restore local serve`: the verdict, the reasons, and no change."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from aurora_restore.local.world import SOURCE_CLUSTER, TARGET_CLUSTER, snapshot_name

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NO_SNAPSHOT_DATE = "2020-01-01"


@dataclass
class Served:
    env: dict[str, str]
    log_file: Path

    def plan(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aurora_restore.cli", "plan", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=self.env["AWS_REGION"],
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def everything(self) -> dict[str, Any]:
        """The state table, the target cluster (less the time moto says is now) and the functions' log."""
        items = self.client("dynamodb").scan(TableName="aurora-restore-state-dev", ConsistentRead=True)
        cluster = self.client("rds").describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
        cluster.pop("LatestRestorableTime", None)
        return {
            "items": sorted(json.dumps(item, sort_keys=True) for item in items["Items"]),
            "cluster": json.dumps(cluster, sort_keys=True, default=str),
            "log": self.log_file.read_text() if self.log_file.exists() else "",
        }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`aurora-restore local serve` running, and the environment its env file gives a shell."""
    folder = tmp_path_factory.mktemp("plan")
    env_file, log_file = folder / "local.env", folder / "functions.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [
            str(BIN / "aurora-restore"),
            "local",
            "serve",
            "--env-file",
            str(env_file),
            "--log-file",
            str(log_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        _wait_ready(server)
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        exports = {name: shlex.split(value)[0] for name, value in exports.items()}
        env.pop("AWS_PROFILE", None)
        yield Served({**env, **exports}, log_file)
    finally:
        server.terminate()
        server.communicate(timeout=60)


def _wait_ready(server: subprocess.Popen[str], timeout: float = 120) -> None:
    assert server.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.strip() == "ready":
            return
    raise AssertionError(f"local serve did not print ready: {lines}")


def _settled(served: Served) -> dict[str, Any]:
    """What `everything` says once a moment has passed: an event put would have run a function by then."""
    time.sleep(1.0)
    return served.everything()


def test_plan_against_local_serve_names_the_snapshot_and_the_target(served: Served) -> None:
    # Given the local runtime with a snapshot of the source for today
    today = date.today().isoformat()
    before = served.everything()
    # When the operator plans a refresh for today
    result = served.plan("--date", today)
    # Then it would start, naming the snapshot and the target
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"a refresh for {today} would start" in result.stdout
    assert snapshot_name(today) in result.stdout and SOURCE_CLUSTER in result.stdout
    assert f"target    {TARGET_CLUSTER} in us-west-2: deleted then restored" in result.stdout
    # And the local RDS answered its quotas
    assert "ok quotas: room for 0 more cluster(s)" in result.stdout
    # And the state table, the target and the functions' log are as they were
    assert _settled(served) == before


def test_plan_for_a_date_with_no_snapshot_exits_1_with_the_reason(served: Served) -> None:
    before = served.everything()
    result = served.plan("--date", NO_SNAPSHOT_DATE, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["would_start"] is False
    assert report["reasons"] == [
        f"snapshot: no snapshot of {SOURCE_CLUSTER} in us-east-1 for {NO_SNAPSHOT_DATE} (looked for"
        f" {snapshot_name(NO_SNAPSHOT_DATE)} and any snapshot created that day)"
    ]
    assert report["target"]["cluster"] == TARGET_CLUSTER
    assert _settled(served) == before


def test_plan_refuses_an_unknown_security_group(served: Served) -> None:
    before = served.everything()
    result = served.plan(
        "--date", date.today().isoformat(), "--override", 'target_security_groups=["sg-0123456789abcdef0"]'
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "target_security_groups: no security group sg-0123456789abcdef0 in us-west-2" in result.stdout
    assert _settled(served) == before
