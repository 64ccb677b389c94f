"""`aurora-restore status` of a swap run whole on the local runtime: it says strategy swap, and a downtime
that is the switch (swap_clusters' runs), not the restore."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest

from aurora_restore import cli
from aurora_restore.local.runtime import LocalRuntime

pytestmark = pytest.mark.e2e

OPERATION = "e2e-swap-status"


def test_status_of_a_completed_swap_says_swap_and_the_switch_as_its_downtime(
    start_runtime: Callable[..., LocalRuntime], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a refresh under swap, run to its end on the local runtime
    runtime = start_runtime()
    runtime.put_restore_requested(OPERATION, date.today(), {"strategy": "swap"})
    state = runtime.wait_for(OPERATION, timeout=90)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])

    # When the operator asks for its status
    code = cli.main(["status", OPERATION])
    out = capsys.readouterr().out

    # Then it says strategy swap, and the downtime is the switch
    assert code == cli.EXIT_OK, out
    assert "\nstrategy    swap\n" in out
    [downtime] = [line for line in out.splitlines() if line.startswith("downtime    ")]
    assert ", the switch: from " in downtime and "(the old target renamed away)" in downtime, downtime
    assert "(the deletion)" not in out
    # swap_clusters is in the history, between verify_restore and delete_rds
    done = [entry.step for entry in state.history if entry.outcome == "success"]
    assert done.index("swap_clusters") == done.index("verify_restore") + 1 == done.index("delete_rds") - 1

    # And the span --json gives is swap_clusters' own: from its first run to its success, not the restore
    code = cli.main(["status", OPERATION, "--json"])
    document = json.loads(capsys.readouterr().out)
    switch = [entry for entry in state.history if entry.step == "swap_clusters"]
    assert document["strategy"] == "swap"
    span = document["out_of_use"]
    assert span["what"] == "the switch"
    assert span["since"] == switch[0].started_at.isoformat()
    assert span["until"] == switch[-1].finished_at.isoformat()
    restore = [entry for entry in state.history if entry.step in ("restore_snapshot", "check_restore_status")]
    assert span["seconds"] < (restore[-1].finished_at - restore[0].started_at).total_seconds()
