"""The runbook's own automation script, unchanged, against `aurora-restore local serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("run_aurora_restore.sh")
RUNBOOK = Path(__file__).resolve().parents[3] / "shared" / "seed" / "aurora-restore-runbook.md"
BIN = Path(sys.executable).parent


def _serve(env_file: Path, log_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
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
    )


def _exports(env_file: Path) -> dict[str, str]:
    """What a shell that sources the file gets: each line's variable, as bash reads its value."""
    names = [line.removeprefix("export ").partition("=")[0] for line in env_file.read_text().splitlines()]
    assert all(line.startswith("export ") for line in env_file.read_text().splitlines())
    script = 'source "$1" && for name in "${@:2}"; do printf "%s\\0" "${!name}"; done'
    printed = subprocess.run(
        ["bash", "-c", script, "bash", str(env_file), *names], capture_output=True, text=True, check=True
    ).stdout
    return dict(zip(names, printed.split("\0")[:-1], strict=True))


def _wait_ready(server: subprocess.Popen[str], timeout: float = 90) -> list[str]:
    assert server.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.strip() == "ready":
            return lines
    raise AssertionError(f"local serve did not print ready: {lines}")


def test_the_script_is_the_runbooks_own() -> None:
    # Given the runbook in shared/ (beside the project) and our copy of its script
    if not RUNBOOK.exists():
        pytest.skip("shared/seed/aurora-restore-runbook.md is not beside the project")
    # Then our copy is the runbook's script, byte for byte
    assert SCRIPT.read_text() in RUNBOOK.read_text()


@pytest.mark.skipif(shutil.which("jq") is None, reason="the runbook's script needs jq (apt-get install jq)")
def test_runbook_script_completes_against_local_serve(tmp_path: Path) -> None:
    # Given `aurora-restore local serve --env-file` running, and its export lines
    env_file, log_file = tmp_path / "local.env", tmp_path / "functions.log"
    server = _serve(env_file, log_file)
    try:
        printed = _wait_ready(server)
        exports = _exports(env_file)
        for name in (
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_LAMBDA",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AURORA_RESTORE_ENV",
            "AURORA_RESTORE_PG_DSN",
        ):
            assert exports.get(name), f"{name} missing from {exports}"
        # And sourced by a shell, the DSN keeps all its parts (it holds spaces)
        dsn = dict(part.split("=", 1) for part in exports["AURORA_RESTORE_PG_DSN"].split())
        assert set(dsn) == {"host", "port", "dbname"} and dsn["port"].isdigit(), exports
        assert "password" not in env_file.read_text().lower()
        assert not [line for line in printed if "password" in line.lower()]
        # The script's `sleep 30` is time-scaled (30 s -> 1 s) by a `sleep` earlier on PATH; the script
        # itself runs unchanged, with the aws CLI and jq.
        shims = tmp_path / "bin"
        shims.mkdir()
        (shims / "sleep").write_text('#!/bin/sh\nexec /bin/sleep "$(awk "BEGIN {print $1 / 30}")"\n')
        (shims / "sleep").chmod(0o755)
        env = {**os.environ, **exports, "PATH": f"{shims}:{BIN}:{os.environ['PATH']}"}
        env.pop("AWS_PROFILE", None)
        # When the runbook's script runs
        result = subprocess.run(
            ["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
        )
        # Then it ends with the runbook's success line
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Aurora restore process completed successfully!" in result.stdout
        # And its last response is cleanup's, in the runbook's shape
        last = json.loads((tmp_path / "response.json").read_text())
        assert last["status"] == "success" and last["next_step"] is None
        assert set(last["cleanup_results"]) == {"snapshot_deleted", "state_data_deleted", "logs_deleted"}
        # And no password went over the terminal
        for secret in ("app_password", "readonly_password"):
            assert secret not in result.stdout and secret not in result.stderr
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    # And SIGTERM stopped everything it started
    assert server.returncode == 0
    assert "stopped" in out
