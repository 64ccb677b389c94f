"""`make schemas`: every model's JSON Schema (events, config, state, hand-offs) into schemas/jsonschema/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.config import DbUser, DbUsers, RestoreConfig
from schemas.events import BUS_EVENTS
from schemas.notice import OutcomeNotice, RejectedNotice
from schemas.outputs import StepOutputs
from schemas.rds_events import RdsEvent
from schemas.responses import DirectResponse
from schemas.state import Lease, OperationState

OUT = Path(__file__).parent / "jsonschema"
MODELS: tuple[type[BaseModel], ...] = (
    *BUS_EVENTS,
    RdsEvent,
    RestoreConfig,
    DbUser,
    DbUsers,
    OperationState,
    Lease,
    StepOutputs,
    DirectResponse,
    OutcomeNotice,
    RejectedNotice,
)


def schemas() -> dict[str, dict[str, Any]]:
    return {model.__name__: model.model_json_schema(by_alias=True) for model in MODELS}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    wanted = schemas()
    for stale in OUT.glob("*.json"):
        if stale.stem not in wanted:
            stale.unlink()
    for name, schema in wanted.items():
        (OUT / f"{name}.json").write_text(render(schema))
    print(f"wrote {len(wanted)} schemas to {OUT}")


if __name__ == "__main__":
    main()
