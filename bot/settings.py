"""Settings from the environment (and an optional ``.env`` file), validated by pydantic.

The names are part of the public contract in DESIGN.md; change one only with a migration note
in the README.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prompts import DEFAULT_STUDY_PATH
from storage.crypto import TextCipher

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"

#: How long a COMPANION_SECRET_KEY must be, and the command that makes a good one.
MIN_SECRET_KEY_LENGTH = 32
MAKE_SECRET_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'  # noqa: S105
_FEWEST_DISTINCT_CHARACTERS = 12
#: Letters only, yet not words: this long and in mixed case, as a random key can come out
#: (``token_urlsafe(48)`` gives 64 characters, with no digit about once in 50,000 keys).
_RANDOM_LETTERS_LENGTH = 48
_NOT_LETTERS = string.digits + string.punctuation + " "


def secret_key_problem(value: str) -> str | None:
    """Why a COMPANION_SECRET_KEY (one or several, comma-separated) is too weak, or None.

    Weak: shorter than :data:`MIN_SECRET_KEY_LENGTH`, made of letters only (a word or a phrase:
    dictionary attacks try those first, and with digits or symbols at the ends, such as a
    year, next), or of few distinct characters (``aaaa...``, ``12341234...``). Letters only is
    still fine in a key of at least 48 letters in mixed case, as a random key can be. Every
    key :data:`MAKE_SECRET_KEY` prints passes.
    """
    keys = [k.strip() for k in value.split(",")]
    if not any(keys):
        return "empty"
    for key in keys:
        if len(key) < MIN_SECRET_KEY_LENGTH:
            return "short"
        letters = key.strip(_NOT_LETTERS).replace(" ", "").replace("-", "").replace("_", "")
        random_looking = len(letters) >= _RANDOM_LETTERS_LENGTH and not (
            letters.islower() or letters.isupper()
        )
        if letters.isalpha() and not random_looking:
            return "words"
        if len(set(key)) < _FEWEST_DISTINCT_CHARACTERS:
            return "repetitive"
    return None


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = DEFAULT_API_BASE_URL
    telegram_webhook_secret: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/companion.db"
    companion_study: Path = DEFAULT_STUDY_PATH
    companion_secret_key: SecretStr | None = None
    companion_data_dir: Path = Path("data")
    companion_locale: str = "en-GB"
    companion_connector_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    companion_researcher_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Whether connectors may make staff (connector, researcher) invites with /invite.
    companion_staff_invites: bool = False
    companion_global_rate: float = Field(default=30.0, gt=0)
    companion_chat_rate: float = Field(default=1.0, gt=0)
    companion_group_per_minute: int = Field(default=20, gt=0)
    # How often the scheduler looks for what has fallen due (seconds), and how far ahead the
    # planner keeps each partner's occurrences (days).
    companion_schedule_tick: float = Field(default=5.0, gt=0, le=300)
    companion_plan_horizon_days: int = Field(default=14, ge=2, le=90)
    # PostgreSQL: how often (seconds) a standby replica tries to take over as the leader.
    companion_leader_retry: float = Field(default=10.0, gt=0, le=20)
    companion_log_level: str = "INFO"
    companion_log_format: str = "text"

    @field_validator("companion_connector_ids", "companion_researcher_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept ``"123,456"`` as well as a list; ids are numeric, never usernames."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return [int(p) for p in parts if p]
        return value

    @property
    def api_base_url(self) -> str:
        """The Bot API base URL; python-telegram-bot appends the token to it."""
        return self.telegram_api_base_url

    @property
    def file_base_url(self) -> str:
        """Where files are downloaded from: Telegram's ``/file/bot`` beside ``/bot``."""
        base = self.telegram_api_base_url.rstrip("/")
        if base.endswith("/bot"):
            return base[: -len("/bot")] + "/file/bot"
        return base + "/file/bot"

    def token(self) -> str:
        """The bot token; raises a plain error when it is missing."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise MissingTokenError
        return self.telegram_bot_token.get_secret_value()

    def text_cipher(self) -> TextCipher:
        """The free-text cipher for ``COMPANION_SECRET_KEY`` (text is kept plain without one)."""
        key = self.companion_secret_key
        return TextCipher(key.get_secret_value() if key is not None else None)


class MissingTokenError(RuntimeError):
    """The bot token is needed but not set."""

    def __init__(self) -> None:
        super().__init__("TELEGRAM_BOT_TOKEN is not set")
