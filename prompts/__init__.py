"""Every word a person reads, and the small API that renders it.

Templates live in one folder per locale (``en-GB/`` first). Messages sent to Telegram are
``*.html.j2`` (HTML, autoescaped, strict about missing values); command-line output is
``*.txt.j2`` (plain text). Short strings such as button labels and the command menu live in
``<locale>/labels.yaml`` and ``<locale>/labels/*.yaml``. This package imports nothing else of ours.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

PROMPTS_DIR = Path(__file__).resolve().parent
DEFAULT_STUDY_PATH = PROMPTS_DIR / "study.yaml"
DEFAULT_LOCALE = "en-GB"
TELEGRAM_TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64


class PromptNotFoundError(LookupError):
    """A template or label name that the locale does not have."""


class Prompts:
    """Renders the templates and labels of one locale.

    ``root`` may point at another folder laid out like this one, so a study can co-produce
    its own wording without touching code.
    """

    def __init__(self, locale: str = DEFAULT_LOCALE, root: Path = PROMPTS_DIR) -> None:
        self.locale = locale
        self.root = root
        folder = root / locale
        if not folder.is_dir():
            raise PromptNotFoundError(f"no prompts folder for locale {locale!r} under {root}")
        self._html = Environment(
            loader=FileSystemLoader(folder),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._text = Environment(
            loader=FileSystemLoader(folder),
            autoescape=False,  # noqa: S701 - command-line text, never sent as HTML
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._labels: dict[str, Any] = _load_labels(folder)
        # A person with no name we can show is called this in every template (``unnamed``).
        unnamed = self._labels.get("people", {}).get("unnamed", "")
        self._html.globals["unnamed"] = self._text.globals["unnamed"] = unnamed

    def render(self, name: str, /, **context: Any) -> str:
        """Render the Telegram message ``name`` (``"start/outsider"``) as HTML."""
        try:
            template = self._html.get_template(f"{name}.html.j2")
        except TemplateNotFound as exc:
            raise PromptNotFoundError(f"no message template {name!r} in {self.locale}") from exc
        return template.render(**context).strip()

    def text(self, name: str, /, **context: Any) -> str:
        """Render the plain-text (command-line) template ``name``."""
        try:
            template = self._text.get_template(f"{name}.txt.j2")
        except TemplateNotFound as exc:
            raise PromptNotFoundError(f"no text template {name!r} in {self.locale}") from exc
        return template.render(**context).strip()

    def label(self, key: str, /, **context: Any) -> str:
        """A short label (a button, a menu entry) by dotted key, e.g. ``"commands.help"``."""
        node: Any = self._labels
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise PromptNotFoundError(f"no label {key!r} in {self.locale}/labels.yaml")
            node = node[part]
        if not isinstance(node, str):
            raise PromptNotFoundError(f"label {key!r} is not a single string")
        return node.format(**context) if context else node

    def labels(self, key: str) -> dict[str, str]:
        """A group of labels, such as the command menu, as a mapping."""
        node: Any = self._labels
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise PromptNotFoundError(f"no labels {key!r} in {self.locale}/labels.yaml")
            node = node[part]
        return {str(k): str(v) for k, v in node.items()}

    def template_names(self) -> list[str]:
        """Every template of this locale, as ``(name, kind)`` strings like ``start/outsider``."""
        names = []
        for path in sorted((self.root / self.locale).rglob("*.j2")):
            names.append(str(path.relative_to(self.root / self.locale)))
        return names


def _load_labels(folder: Path) -> dict[str, Any]:
    """``labels.yaml`` merged with every ``labels/*.yaml`` (one file per feature).

    Top-level keys must not repeat across files, so two features cannot silently overwrite
    each other's wording.
    """
    files = [folder / "labels.yaml", *sorted((folder / "labels").glob("*.yaml"))]
    merged: dict[str, Any] = {}
    for path in files:
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise PromptNotFoundError(f"{path} must be a mapping of labels")
        for key, value in data.items():
            if key in merged:
                raise PromptNotFoundError(f"label group {key!r} is defined twice ({path})")
            merged[key] = value
    return merged


@cache
def default_prompts(locale: str = DEFAULT_LOCALE) -> Prompts:
    """The shipped prompts for ``locale``, loaded once."""
    return Prompts(locale)
