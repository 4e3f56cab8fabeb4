"""JSON Schemas of the `--json` outputs, as documented in the README ("Scripting")."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

_COUNT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_FINDING = _object(
    {
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "message": {"type": "string", "minLength": 1},
        "line": {"type": ["integer", "null"], "minimum": 1},
    }
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "compose": _object(
        {
            "issue": {"type": "string"},
            "ok": _COUNT,
            "fallback": _COUNT,
            "failed": _COUNT,
            "cached": _COUNT,
            "skipped": _COUNT,
            "candidates": _COUNT,
            "merged": _COUNT,
            "draft": {"type": ["string", "null"]},
            "report": {"type": "string"},
        }
    ),
    "status": _object(
        {
            "issue": {"type": "string"},
            "links": {
                "type": "array",
                "items": _object(
                    {
                        "url": {"type": "string"},
                        "state": {"type": "string"},
                        "reason": {"type": ["string", "null"]},
                    }
                ),
            },
        }
    ),
    "check": _object(
        {
            "issue": {"type": "string"},
            "errors": {"type": "array", "items": _FINDING},
            "warnings": {"type": "array", "items": _FINDING},
        }
    ),
    "doctor": _object(
        {
            "ok": {"type": "boolean"},
            "checks": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "status": {"enum": ["ok", "warn", "fail"]},
                        "message": {"type": "string", "minLength": 1},
                    }
                ),
            },
        }
    ),
}


def parse_and_validate(command: str, stdout: str) -> dict[str, Any]:
    """stdout must be exactly one JSON object matching the command's schema; return it."""
    data = json.loads(stdout)  # raises on anything but one JSON document
    Draft202012Validator.check_schema(SCHEMAS[command])
    Draft202012Validator(SCHEMAS[command]).validate(data)
    assert isinstance(data, dict)
    return data
