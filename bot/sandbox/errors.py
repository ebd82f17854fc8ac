"""Bot API error answers raised by the sandbox's method handlers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API error answer: HTTP ``status`` = ``error_code``, Telegram's ``description``."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        """Create the error; ``parameters`` becomes the envelope's ``parameters``."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def envelope(self) -> dict[str, Any]:
        """Telegram's error JSON."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    """A 400 ``Bad Request: <text>`` error."""
    return ApiError(400, f"Bad Request: {text}")
