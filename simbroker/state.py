"""Records to JSON and back, and the atomic write of a state file.

Frozen dataclasses are encoded field by field with dates and times as ISO 8601 strings, enums
as their wire values and frozensets as sorted lists; decoding reads the field types from the
dataclass, so a state file is plain, diffable JSON with no type tags.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from state_files import atomic_write_text

T = TypeVar("T")


def encode(record: Any) -> dict[str, Any]:
    """A frozen dataclass as a JSON-ready dict."""
    return {f.name: _encode_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """The dataclass `cls` from `encode`'s output; unknown keys are an error naming them."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    return cls(**{k: _decode_value(hints[k], v) for k, v in data.items()})


def _encode_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def _decode_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode_value(options[0], value)
    if origin is frozenset:
        return frozenset(value)
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return hint(value)
        if hint is datetime:
            return datetime.fromisoformat(value)
        if hint is date:
            return date.fromisoformat(value)
        if hint is float:
            return float(value)
    return value


def write_atomically(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write JSON so that `path` holds either the old or the new content, never a torn file
    (the project's one atomic write: temp file in the same directory, fsync, os.replace)."""
    atomic_write_text(Path(path), json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A state file's JSON; a missing or unreadable file is an error naming it (never {})."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"exchange state file {path} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"exchange state file {path} cannot be read ({exc}); restore it or "
                         "delete it to start a fresh exchange") from exc
    if not isinstance(data, dict):
        raise ValueError(f"exchange state file {path} does not hold a JSON object")
    return data
