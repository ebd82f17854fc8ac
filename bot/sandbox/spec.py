"""Validation of Bot API requests and objects against the machine-readable Bot API spec.

The spec is ``shared/telegram-bot-api/api.json`` beside the repository root (override the path
with the ``COMPANION_BOT_API_SPEC`` environment variable). It lists ``methods`` and ``types``;
each has ``fields`` (``name``, ``types``, ``required``), methods have ``returns`` and union types
have ``subtypes``. :class:`BotApiSpec` checks:

* requests (:meth:`BotApiSpec.check_request`): the method exists, required parameters are
  present, no unknown parameters, values have the right shape. Form-encoded values arrive as
  strings, so requests are checked leniently: ``"42"`` is an Integer, ``"true"`` a Boolean and
  a JSON string an object.
* results and objects (:meth:`BotApiSpec.check_result`, :meth:`BotApiSpec.check_object`):
  strictly and recursively: required fields present, no unknown fields, primitive types right,
  ``Array of X`` element-wise, unions resolved by their discriminator field (``type``,
  ``status``, ``source``) or else by the first subtype that validates.

Every check returns a list of human-readable violations; an empty list means valid.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.state import UploadedFile

ENV_VAR = "COMPANION_BOT_API_SPEC"

_PRIMITIVES = frozenset({"Integer", "Float", "String", "Boolean"})
_DISCRIMINATOR = re.compile(r"(?:always|must be)\s+[\"“]?([a-z_]+)[\"”]?")


def find_spec_path() -> Path | None:
    """Locate ``api.json``: ``$COMPANION_BOT_API_SPEC``, else ``<repo>/../shared/...``.

    Returns ``None`` when no file exists at the chosen location.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        return path if path.is_file() else None
    repo_root = Path(__file__).resolve().parents[2]
    for candidate in (
        repo_root.parent / "shared" / "telegram-bot-api" / "api.json",
        repo_root / "shared" / "telegram-bot-api" / "api.json",
    ):
        if candidate.is_file():
            return candidate
    return None


def expected_spec_location() -> Path:
    """Where :func:`find_spec_path` looks first (for error messages)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "telegram-bot-api" / "api.json"


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[str, ...]
    required: bool


class BotApiSpec:
    """The Bot API spec, indexed for validation."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Index a decoded ``api.json`` document."""
        self.version: str = str(data.get("version", "unknown"))
        self._methods: dict[str, dict[str, Any]] = {}
        self._method_names: dict[str, str] = {}
        for name, method in data.get("methods", {}).items():
            self._methods[name] = method
            self._method_names[name.lower()] = name
        self._types: dict[str, dict[str, Any]] = dict(data.get("types", {}))
        self._fields: dict[str, dict[str, _Field]] = {}
        for name, entry in [*self._types.items(), *self._methods.items()]:
            self._fields[name] = {
                f["name"]: _Field(f["name"], tuple(f.get("types", [])), bool(f.get("required")))
                for f in entry.get("fields", [])
            }
        self._discriminators: dict[str, tuple[str, dict[str, str]] | None] = {}

    @classmethod
    def load(cls, path: Path | str) -> BotApiSpec:
        """Read and index the spec file at ``path``."""
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh))

    @classmethod
    def load_default(cls) -> BotApiSpec | None:
        """Load the spec from :func:`find_spec_path`, or return ``None`` when it is absent."""
        path = find_spec_path()
        return cls.load(path) if path is not None else None

    # ------------------------------------------------------------------ lookups
    def method_name(self, name: str) -> str | None:
        """Return the canonical spelling of a method name (case-insensitive), or ``None``."""
        return self._method_names.get(name.lower())

    def param_types(self, method: str) -> dict[str, tuple[str, ...]]:
        """Return parameter name -> type expressions for ``method`` (empty if unknown)."""
        canonical = self.method_name(method)
        if canonical is None:
            return {}
        return {name: f.types for name, f in self._fields[canonical].items()}

    # ------------------------------------------------------------------ checks
    def check_request(self, method: str, params: dict[str, Any]) -> list[str]:
        """Check a Bot API request's method name and parameters."""
        canonical = self.method_name(method)
        if canonical is None:
            return [f"{method}: unknown method"]
        errors: list[str] = []
        fields = self._fields[canonical]
        for name, fld in fields.items():
            if fld.required and params.get(name) is None:
                errors.append(f"{canonical}: missing required parameter {name!r}")
        for name, value in params.items():
            fld_or_none = fields.get(name)
            if fld_or_none is None:
                errors.append(f"{canonical}: unknown parameter {name!r}")
                continue
            if value is None:
                continue
            errors.extend(self._check_union(fld_or_none.types, value, f"{canonical}.{name}", True))
        return errors

    def check_result(self, method: str, result: Any) -> list[str]:
        """Check the ``result`` the server returns for ``method`` against its ``returns``."""
        canonical = self.method_name(method)
        if canonical is None:
            return [f"{method}: unknown method"]
        returns = tuple(self._methods[canonical].get("returns", []))
        if not returns:
            return []
        return self._check_union(returns, result, f"{canonical} result", False)

    def check_object(self, type_name: str, value: Any, path: str | None = None) -> list[str]:
        """Check ``value`` against the type expression ``type_name`` (e.g. ``"Update"``)."""
        return self._check_expr(type_name, value, path or type_name, False)

    # ------------------------------------------------------------------ internals
    def _check_union(
        self, exprs: tuple[str, ...], value: Any, path: str, lenient: bool
    ) -> list[str]:
        best: list[str] | None = None
        for expr in exprs:
            errors = self._check_expr(expr, value, path, lenient)
            if not errors:
                return []
            if best is None or len(errors) < len(best):
                best = errors
        if (
            len(exprs) > 1
            and best is not None
            and len(best) == 1
            and best[0].startswith(f"{path}: expected")
        ):
            return [f"{path}: expected {' or '.join(exprs)}, got {type(value).__name__}"]
        return best or []

    def _check_expr(self, expr: str, value: Any, path: str, lenient: bool) -> list[str]:
        if expr.startswith("Array of "):
            inner = expr.removeprefix("Array of ")
            if lenient and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    return [f"{path}: expected {expr}, got a non-JSON string"]
            if not isinstance(value, list):
                return [f"{path}: expected {expr}, got {type(value).__name__}"]
            errors: list[str] = []
            for index, item in enumerate(value):
                errors.extend(self._check_expr(inner, item, f"{path}[{index}]", lenient))
            return errors
        if expr in _PRIMITIVES:
            return self._check_primitive(expr, value, path, lenient)
        if expr == "InputFile":
            if isinstance(value, UploadedFile) or (lenient and isinstance(value, str)):
                return []
            return [f"{path}: expected InputFile, got {type(value).__name__}"]
        entry = self._types.get(expr)
        if entry is None:
            return [f"{path}: unknown type {expr!r} in spec"]
        if lenient and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return [f"{path}: expected {expr} (JSON), got a non-JSON string"]
        if "subtypes" in entry:
            return self._check_subtypes(expr, entry["subtypes"], value, path, lenient)
        if not isinstance(value, dict):
            return [f"{path}: expected {expr} object, got {type(value).__name__}"]
        fields = self._fields.get(expr, {})
        errors = []
        for name, fld in fields.items():
            if fld.required and name not in value:
                errors.append(f"{path}: {expr} is missing required field {name!r}")
        for key, item in value.items():
            fld_or_none = fields.get(key)
            if fld_or_none is None:
                errors.append(f"{path}: {expr} has unknown field {key!r}")
                continue
            errors.extend(self._check_union(fld_or_none.types, item, f"{path}.{key}", lenient))
        return errors

    @staticmethod
    def _check_primitive(expr: str, value: Any, path: str, lenient: bool) -> list[str]:
        ok: bool
        if expr == "Integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok and lenient and isinstance(value, str):
                ok = bool(re.fullmatch(r"-?\d+", value.strip()))
        elif expr == "Float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok and lenient and isinstance(value, str):
                try:
                    float(value)
                    ok = True
                except ValueError:
                    ok = False
        elif expr == "String":
            ok = isinstance(value, str)
            if not ok and lenient:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:  # Boolean
            ok = isinstance(value, bool)
            if not ok and lenient:
                ok = value in ("true", "false", "True", "False", 0, 1)
        if ok:
            return []
        return [f"{path}: expected {expr}, got {type(value).__name__} {value!r:.60}"]

    def _discriminator(self, union: str, subtypes: list[str]) -> tuple[str, dict[str, str]] | None:
        if union in self._discriminators:
            return self._discriminators[union]
        result: tuple[str, dict[str, str]] | None = None
        for key in ("type", "status", "source"):
            mapping: dict[str, str] = {}
            for sub in subtypes:
                entry = self._types.get(sub, {})
                for f in entry.get("fields", []):
                    if f["name"] == key:
                        description = f.get("description", "")
                        if isinstance(description, list):
                            description = " ".join(description)
                        match = _DISCRIMINATOR.search(str(description))
                        if match:
                            mapping[match.group(1)] = sub
            if mapping and len(mapping) == len(subtypes):
                result = (key, mapping)
                break
        self._discriminators[union] = result
        return result

    def _check_subtypes(
        self, union: str, subtypes: list[str], value: Any, path: str, lenient: bool
    ) -> list[str]:
        disc = self._discriminator(union, subtypes)
        if disc is not None and isinstance(value, dict):
            key, mapping = disc
            tag = value.get(key)
            if tag not in mapping:
                return [f"{path}: {union} has unknown {key} {tag!r} (one of {sorted(mapping)})"]
            return self._check_expr(mapping[tag], value, path, lenient)
        return self._check_union(tuple(subtypes), value, path, lenient)
