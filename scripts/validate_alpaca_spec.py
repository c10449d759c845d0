"""Check the local exchange's asset and account answers against Alpaca's OpenAPI spec, as
amended by the changelog since (a developer's check: `make test` does not run it, and no test
depends on the spec files).

    .venv/bin/python scripts/validate_alpaca_spec.py [--spec-dir ../shared/alpaca-openapi]

Serves an exchange on loopback, reads GET /v2/assets (today's shape, then --legacy_assets'
older one) and GET /v2/account over HTTP, and validates each against the `Assets` and
`Account` schemas of trading-api-2026-06.json: types, formats (uuid, date-time, date,
decimal strings), enums, nullability, required fields, and no field the schema lacks. The
spec is from June 2026; the changelog entries since are applied to it first (see
docs/alpaca-api.md):

* 2026-07-16 (docs.alpaca.markets/us/changelog/2026-07-16-asset-fields-4be5238): the
  deprecated `easy_to_borrow` is no longer required on assets;
* 2026-07-06 (docs.alpaca.markets/us/changelog, "Pattern day trading fields and
  configurations removed"): `daytrade_count`, `daytrading_buying_power` and
  `pattern_day_trader` are no longer on the account; the legacy-PDT account still sends them.

alpaca-py 0.44.0, the tests' second client, cannot parse today's asset (its model requires
`easy_to_borrow`), which is why this one response is checked here. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market_calendar import new_york_noon  # noqa: E402
from simbroker import Exchange, ExchangeConfig, market_data, serve  # noqa: E402

# ../shared/alpaca-openapi from the repository, or from a directory above it (a worktree).
DEFAULT_SPEC_DIR = next((p / "shared" / "alpaca-openapi" for p in ROOT.parents
                         if (p / "shared" / "alpaca-openapi").is_dir()),
                        ROOT.parent / "shared" / "alpaca-openapi")
REMOVED_FROM_ACCOUNT = ("daytrade_count", "daytrading_buying_power", "pattern_day_trader")
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


class Validator:
    """The subset of OpenAPI 3 schemas the Trading API's asset and account use."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.schemas = spec["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def check(self, value: Any, schema: dict[str, Any], where: str) -> list[str]:
        schema = self.resolve(schema)
        if value is None:
            return [] if schema.get("nullable") else [f"{where}: null, the schema says "
                                                     "not nullable"]
        if "allOf" in schema:
            return [p for part in schema["allOf"] for p in self.check(value, part, where)]
        kind = schema.get("type")
        problems = self._type(value, kind, schema, where)
        if problems:
            return problems
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
        if kind == "object":
            problems += self._object(value, schema, where)
        if kind == "array":
            for i, item in enumerate(value):
                problems += self.check(item, schema.get("items", {}), f"{where}[{i}]")
        return problems

    def _type(self, value: Any, kind: str | None, schema: dict[str, Any],
              where: str) -> list[str]:
        expected = {"string": str, "boolean": bool, "array": list, "object": dict,
                    "integer": int, "number": (int, float)}.get(kind or "")
        if expected is None:
            return []
        wrong = not isinstance(value, expected) or (
            kind in ("integer", "number") and isinstance(value, bool))
        if wrong:
            return [f"{where}: {value!r} is not of type {kind}"]
        return self._format(value, schema.get("format"), where) if kind == "string" else []

    @staticmethod
    def _format(value: str, fmt: str | None, where: str) -> list[str]:
        try:
            if fmt == "uuid":
                uuid.UUID(value)
            elif fmt == "date-time":
                datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z",
                                                                                   "+00:00")))
            elif fmt == "date":
                date.fromisoformat(value)
            elif fmt == "decimal" and not DECIMAL.match(value):
                raise ValueError
        except ValueError:
            return [f"{where}: {value!r} is not a valid {fmt}"]
        return []

    def _object(self, value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
        properties = schema.get("properties", {})
        problems = [f"{where}: required field {name!r} is missing"
                    for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name not in properties:
                problems.append(f"{where}: field {name!r} is not in the schema")
            else:
                problems += self.check(item, properties[name], f"{where}.{name}")
        return problems


def amended(spec: dict[str, Any]) -> dict[str, Any]:
    """The June 2026 spec with the changelog's later changes to assets and accounts."""
    spec = json.loads(json.dumps(spec))
    schemas = spec["components"]["schemas"]
    schemas["Assets"]["required"] = [n for n in schemas["Assets"]["required"]
                                     if n != "easy_to_borrow"]
    for name in REMOVED_FROM_ACCOUNT:
        schemas["Account"]["properties"].pop(name, None)
    return spec


def answers(exchange: Exchange) -> dict[str, Any]:
    with serve(exchange, port=0) as server:
        headers = {"APCA-API-KEY-ID": exchange.config.key_id,
                   "APCA-API-SECRET-KEY": exchange.config.secret_key}

        def get(path: str) -> Any:
            response = requests.get(server.trading_url + path, headers=headers, timeout=30)
            response.raise_for_status()
            return response.json()

        return {"assets": get("/v2/assets"), "account": get("/v2/account")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec-dir", type=Path, default=DEFAULT_SPEC_DIR)
    args = parser.parse_args(argv)
    spec_file = args.spec_dir / "trading-api-2026-06.json"
    if not spec_file.is_file():
        print(f"{spec_file}: not found; pass --spec-dir with Alpaca's OpenAPI files",
              file=sys.stderr)
        return 2
    validator = Validator(amended(json.loads(spec_file.read_text())))
    data = market_data.load("us-stocks")
    now = new_york_noon(date(2022, 3, 1))
    problems: list[str] = []
    for label, config in (("today", ExchangeConfig()),
                          ("legacy assets", ExchangeConfig(legacy_assets=True))):
        got = answers(Exchange(data, config, now=now))
        for asset in got["assets"]:
            problems += validator.check(asset, {"$ref": "#/components/schemas/Assets"},
                                        f"{label} asset {asset.get('symbol')}")
        if label == "today":
            problems += validator.check(got["account"],
                                        {"$ref": "#/components/schemas/Account"}, "account")
            print(f"{label}: {len(got['assets'])} assets and the account checked")
        else:
            print(f"{label}: {len(got['assets'])} assets checked")
    for problem in problems:
        print(problem)
    print("OK: the shapes agree with the spec as amended" if not problems
          else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
