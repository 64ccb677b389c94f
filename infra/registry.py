"""The EventBridge schema registry, holding our events' exported JSON Schemas (schemas/jsonschema/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.settings import StackSettings
from schemas.events import BUS_EVENTS, EVENT_SOURCE

JSONSCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "jsonschema"
DRAFT4 = "http://json-schema.org/draft-04/schema#"


def _draft4(node: Any) -> Any:
    """pydantic writes JSON Schema 2020-12; the registry's JSONSchemaDraft4 type wants draft 4 spellings."""
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            converted["definitions"] = _draft4(value)
        elif key == "$ref" and isinstance(value, str):
            converted["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif key == "const":
            converted["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            converted["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            converted[key] = True
        else:
            converted[key] = _draft4(value)
    return converted


def registry_schema(detail_type: str, detail_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole EventBridge event (source, detail-type, detail) as code bindings expect it."""
    detail = _draft4(detail_schema)
    definitions = detail.pop("definitions", {})
    definitions[detail_type] = detail
    return {
        "$schema": DRAFT4,
        "title": detail_type,
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"type": "string", "enum": [EVENT_SOURCE]},
            "detail-type": {"type": "string", "enum": [detail_type]},
            "detail": {"$ref": f"#/definitions/{detail_type}"},
        },
        "definitions": definitions,
    }


def exported_schemas(directory: Path = JSONSCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """detail-type -> registry schema, for every event we put on the bus."""
    found = {}
    for model in BUS_EVENTS:
        path = directory / f"{model.detail_type}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make schemas`")
        found[model.detail_type] = registry_schema(model.detail_type, json.loads(path.read_text()))
    return found


class EventSchemas(pulumi.ComponentResource):
    registry: aws.schemas.Registry

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aurora-restore:infra:EventSchemas", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.registry = aws.schemas.Registry(
            name,
            name=settings.bus_name,
            description=f"events on the {settings.bus_name} bus (source {EVENT_SOURCE})",
            opts=child,
        )
        self.schemas = {
            detail_type: aws.schemas.Schema(
                f"{name}-{detail_type}",
                name=f"{EVENT_SOURCE}@{detail_type}",
                registry_name=self.registry.name,
                type="JSONSchemaDraft4",
                description=f"{detail_type} (source {EVENT_SOURCE})",
                content=json.dumps(schema, sort_keys=True),
                opts=child,
            )
            for detail_type, schema in exported_schemas().items()
        }
        self.register_outputs({"registry": self.registry.name})
