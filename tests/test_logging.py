"""Logs never carry the bot token, and never carry what people wrote at INFO or above."""

from __future__ import annotations

import logging

from bot.logs import RedactingFilter
from tests.conftest import CONNECTOR_ID


def test_the_filter_redacts_token_shapes_and_the_configured_secret() -> None:
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "GET https://api.telegram.org/bot123456789:AAEabcdefghijklmnopqrstuvwxyz012345/getMe %s",
        ("tok-en",),
        None,
    )
    RedactingFilter(["tok-en"]).filter(record)
    message = record.getMessage()
    assert "AAEabc" not in message and "tok-en" not in message and "[redacted]" in message


async def test_a_whole_conversation_logs_no_token_and_no_message_text(
    companion, sandbox, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    diary = "my private diary entry about a hard week"
    user = sandbox.user(CONNECTOR_ID, "Jo")
    user.send_command("help")
    user.send_text(diary)
    sandbox.user(5555, "Stranger").send_text(diary)
    await sandbox.wait_for_messages(CONNECTOR_ID, 2)
    await sandbox.wait_for_messages(5555, 1)
    token_secret = sandbox.token.split(":", 1)[1]
    for record in caplog.records:
        text = record.getMessage()
        assert token_secret not in text, f"token in a log line from {record.name}"
        if record.levelno >= logging.INFO:
            assert diary not in text, f"message text logged by {record.name}"


def test_python_telegram_bot_and_http_libraries_stay_quiet_at_debug(caplog) -> None:
    """At COMPANION_LOG_LEVEL=DEBUG python-telegram-bot would log every call's parameters
    (message texts) and HTTP libraries every URL (the token): they are held at WARNING."""
    from bot.logs import QUIET_LOGGERS, configure_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging("DEBUG")
        for name in ("telegram.ext.ExtBot", "telegram._bot", "aiohttp.client", "httpx"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger("bot.transport.sender").isEnabledFor(logging.DEBUG)
        assert "telegram" in QUIET_LOGGERS
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_a_stored_delivery_error_never_holds_the_token() -> None:
    """An aiohttp error can carry the whole URL, token included, into last_error."""
    import aiohttp
    from telegram.error import NetworkError

    from bot.transport.delivery_errors import classify

    url = "https://api.telegram.org/bot123456789:AAEabcdefghijklmnopqrstuvwxyz012345/sendMessage"
    error = NetworkError(f"Cannot connect to host for {url}")
    error.__cause__ = aiohttp.ClientConnectionError(url)
    described = classify(error).description
    assert "AAEabc" not in described and "123456789:" not in described
    assert "[redacted]" in described


async def test_database_errors_do_not_carry_what_was_written(database) -> None:
    """A failed statement's error must not repeat its parameters (message texts, names)."""
    from sqlalchemy.exc import IntegrityError

    from storage.models import Person

    secret = "P-PRIVATE-NAME"
    async with database.transaction() as session:
        session.add(Person(pseudonym=secret, role="partner", status="active"))
    try:
        async with database.transaction() as session:
            session.add(Person(pseudonym=secret, role="partner", status="active"))
    except IntegrityError as exc:
        assert secret not in str(exc)
    else:
        raise AssertionError("a repeated pseudonym should have failed")
