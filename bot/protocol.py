"""The study protocol: a YAML file validated into typed models, with errors a person can act on.

An error names the file, the line and what to change, because the people who edit this file
are study staff, not programmers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ProtocolError(ValueError):
    """The protocol file cannot be used; the message says where and why."""


class StudyInfo(BaseModel):
    """Who runs the study and how it presents itself."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    team: str = Field(min_length=1, max_length=200)
    locale: str = "en-GB"
    monitored_hours: str = Field(min_length=1, max_length=200)


class StudyProtocol(BaseModel):
    """The whole protocol file."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    study: StudyInfo
    crisis_resources: list[str] = Field(min_length=1)


def _line_of(root: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``location``, or of its nearest parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            match = node.value[key] if key < len(node.value) else None
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is missing; add it"
    if kind == "extra_forbidden":
        return "is not a setting the protocol knows; check the spelling or remove it"
    return f"{error['msg'].lower()}"


def load_protocol(path: Path) -> StudyProtocol:
    """Read and validate the protocol at ``path``; raise ProtocolError with a clear message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProtocolError(f"{path}: the study protocol file does not exist") from exc
    except OSError as exc:
        raise ProtocolError(f"{path}: the study protocol file cannot be read ({exc})") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "it is not valid YAML"
        raise ProtocolError(
            f"{where}: {problem}; check the indentation and quotes on that line"
        ) from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: the protocol must be a YAML mapping of settings")
    try:
        return StudyProtocol.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error["loc"])
            line = _line_of(root, location)
            dotted = ".".join(str(p) for p in location) or "(top level)"
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {dotted} {_describe(error)}")
        raise ProtocolError("\n".join(problems)) from exc
