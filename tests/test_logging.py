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
