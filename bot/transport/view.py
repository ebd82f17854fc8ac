"""What a message looks like before it is sent: its text, its buttons, the templates behind it.

Each message a person can see is built by one view function in the room it belongs to (for
example :mod:`bot.partners.views`), which returns a :class:`View`. The handlers and services
send what the views return, and ``companion preview`` shows the same views, so the preview
cannot drift from what people really get.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from prompts import Prompts


@dataclass(frozen=True)
class View:
    """One message: Telegram HTML, optional buttons, and the templates it is made of.

    ``templates`` are template names without their suffix (``"settings/menu"``), the main
    one first.
    """

    text: str
    markup: InlineKeyboardMarkup | None = None
    templates: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        """A view unpacks as ``text, markup``, as a message is sent."""
        return iter((self.text, self.markup))


def render_view(
    prompts: Prompts,
    template: str,
    markup: InlineKeyboardMarkup | None = None,
    /,
    **values: Any,
) -> View:
    """The message of one template rendered with ``values``, with ``markup`` as its buttons."""
    return View(prompts.render(template, **values), markup, (template,))
