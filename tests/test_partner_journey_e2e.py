"""The whole partner journey through the sandbox, as issue 3 describes it: invited on the
command line, enrolled, consenting to some items and not others, a check-in with buttons, text,
a voice note and a Skip, an answer changed, and then all of it in /mydata."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import select

from storage.models import Answer, ConsentDecision
from tests.support import data_for, settle
from tests.test_invite_cli import run_cli

PARTNER = 7301


class Phone:
    """One partner's chat: what they do, and the bot's messages as they arrive."""

    def __init__(self, companion, sandbox, user_id: int, name: str) -> None:
        self.companion, self.sandbox = companion, sandbox
        self.user = sandbox.user(user_id, name)
        self.id = user_id

    async def latest(self) -> dict:
        await settle(self.companion, self.sandbox)
        return self.sandbox.sent_to(self.id)[-1]

    async def tap(self, label: str, message: dict | None = None) -> dict:
        message = message or await self.latest()
        self.user.press(message, data_for(message, label))
        return await self.latest()


async def test_invited_enrolled_checked_in_changed_and_seen_in_mydata(
    companion, sandbox, database, database_url, tmp_path
):
    created = await run_cli(
        "invite", "create", "--role", "partner", "--group", "north", "--json",
        sandbox=sandbox, database_url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    [invite] = json.loads(created.stdout)
    assert invite["link"] == f"https://t.me/{sandbox.bot_user['username']}?start={invite['code']}"

    phone = Phone(companion, sandbox, PARTNER, "Rowan")
    phone.user.send_command("start", invite["code"])
    safety = await phone.latest()
    consent = await phone.tap("start", safety)
    assert "take part" in consent["text"]
    quote = await phone.tap("Yes", consent)
    credit = await phone.tap("Yes", quote)  # may quote my words anonymously
    ask_name = await phone.tap("No", credit)  # do not credit me by name
    assert "call you" in ask_name["text"]
    phone.user.send_text("Ro")
    slot = await phone.latest()
    done = await phone.tap("Thursday", slot)
    assert "Ro" in done["text"]

    # A check-in: confidence 2 brings the follow-up, answered by text.
    phone.user.send_command("checkin")
    confidence = await phone.latest()
    follow_up = await phone.tap("2", confidence)
    assert "What would help" in follow_up["text"]
    phone.user.send_text("More time to read the papers before meetings")
    valued = await phone.latest()
    team = await phone.tap("4", valued)
    reflection = await phone.tap("5", team)
    assert "voice note" in reflection["text"]
    # While the check-in is still open, the partner changes how valued they felt...
    await phone.tap("3", valued)
    # ...and answers the reflection with a voice note, which ends the check-in.
    phone.user.send_voice(duration=9)
    end = await phone.latest()
    assert "reflection" in end["text"].lower()

    # A second check-in ends with a Skip.
    phone.user.send_command("checkin")
    second = await phone.latest()
    await phone.tap("4", second)
    await phone.tap("4")
    await phone.tap("4")
    final = await phone.tap("Skip")
    assert "2 reflections so far" in final["text"]

    async with database.sessions() as session:
        consents = {
            c.item_key: c.granted
            for c in (await session.execute(select(ConsentDecision))).scalars()
        }
        rows = (await session.execute(select(Answer).order_by(Answer.id))).scalars().all()
    assert consents == {"take_part": True, "quote_anonymously": True, "credit_by_name": False}
    valued_rows = [
        r for r in rows if r.question_key == "valued" and r.checkin_id == rows[0].checkin_id
    ]
    assert [(r.value_number, r.superseded_at is None) for r in valued_rows] == [
        (4, False),
        (3, True),
    ], "the change is kept in history"
    help_row = next(r for r in rows if r.question_key == "confidence_help")
    assert help_row.text_encrypted and "papers" not in (help_row.value_text or "")
    voice_row = next(r for r in rows if r.question_key == "reflection" and r.voice_file_id)
    assert voice_row.voice_duration == 9 and voice_row.voice_path
    assert any(r.skipped for r in rows)

    # /mydata gives all of it back, decrypted, history included.
    phone.user.send_command("mydata")
    document = await phone.latest()
    assert "document" in document, document
    stored = sandbox.files.get(document["document"]["file_id"])
    with zipfile.ZipFile(io.BytesIO(stored.data)) as archive:
        names = archive.namelist()
        mine = json.loads(archive.read("my_data.json"))
        answers_csv = archive.read("answers.csv").decode("utf-8-sig")
    assert "More time to read the papers before meetings" in answers_csv
    assert any(name.endswith(".ogg") for name in names), "the voice note is included"
    answers = (
        mine["tables"]["answers"] if "answers" in mine["tables"] else mine["tables"]["answer"]
    )
    assert len(answers) == len(rows)
    assert mine["tables"]["telegram_identity"][0]["telegram_user_id"] == PARTNER
