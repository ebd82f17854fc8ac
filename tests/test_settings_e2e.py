"""/settings through the sandbox: each change lands in the database and is confirmed; forged
or stale buttons change nothing. Plus the quiet-hours and time-zone rules themselves."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from bot.calendar.quiet import NO_QUIET_HOURS, QuietHours, is_quiet, quiet_hours
from bot.calendar.zones import resolve_timezone
from bot.partners.preferences import NAME_LIMIT
from bot.protocol import load_protocol
from bot.text import clean_name
from prompts import DEFAULT_STUDY_PATH
from storage.models import PartnerProfile, TelegramIdentity
from tests.factories import enrol
from tests.tools_support import running_companion, settle

PROTOCOL = load_protocol(DEFAULT_STUDY_PATH)
USER = 8101


async def profile_of(database, person_id: int) -> PartnerProfile:
    async with database.sessions() as session:
        profile = await session.get(PartnerProfile, person_id)
        assert profile is not None
        return profile


async def step(sandbox, companion, action, *, expect: int = 1) -> list[dict]:
    """Do something as the partner and return the bot's new messages."""
    before = len(sandbox.sent_to(USER))
    result = action()
    if expect:
        await sandbox.wait_for_messages(USER, before + expect, timeout=10)
    await settle(companion, sandbox)
    return [*sandbox.sent_to(USER)[before:], result]


def buttons(message: dict) -> dict[str, str]:
    return {
        b["text"]: b["callback_data"]
        for row in message["reply_markup"]["inline_keyboard"]
        for b in row
    }


@pytest.fixture
async def partner(database):
    return await enrol(database, USER, name="Sam", group="north")


async def test_settings_menu_and_every_change(partner, sandbox, database, database_url, tmp_path):
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        menu, _ = await step(sandbox, companion, lambda: user.send_command("settings"))
        assert "Name: <b>Sam</b>" in menu["text"] or "Name: Sam" in menu["text"]
        assert "Quiet hours: 9pm to 8am" in menu["text"]
        assert set(buttons(menu).values()) == {
            "set:menu:name",
            "set:menu:group",
            "set:menu:tz",
            "set:menu:slot",
            "set:menu:quiet",
            "set:menu:pay",
        }

        # Name: the next text is the name.
        ask, _ = await step(sandbox, companion, lambda: user.press(menu, "set:menu:name"))
        assert "What would you like me to call you?" in ask["text"]
        assert (await profile_of(database, partner.id)).awaiting_input == "settings:name"
        done, _ = await step(sandbox, companion, lambda: user.send_text("  Sammy  Jo "))
        assert "I will call you that" in done["text"] and "Sammy Jo" in done["text"]
        async with database.sessions() as session:
            identity = (
                await session.execute(
                    select(TelegramIdentity).where(TelegramIdentity.person_id == partner.id)
                )
            ).scalar_one()
        assert identity.preferred_name == "Sammy Jo"
        assert (await profile_of(database, partner.id)).awaiting_input is None

        # Group, with its time zone.
        groups, _ = await step(sandbox, companion, lambda: user.press(menu, "set:menu:group"))
        assert buttons(groups)["South West"] == "set:group:south"
        done, _ = await step(sandbox, companion, lambda: user.press(groups, "set:group:south"))
        assert "South West" in done["text"] and "Tom" in done["text"]
        assert (await profile_of(database, partner.id)).group_key == "south"

        # Time zone by button.
        zones, _ = await step(sandbox, companion, lambda: user.press(menu, "set:menu:tz"))
        assert buttons(zones)["Ireland (Dublin)"] == "set:tz:Europe/Dublin"
        done, _ = await step(sandbox, companion, lambda: user.press(zones, "set:tz:Europe/Dublin"))
        assert "Ireland (Dublin)" in done["text"]
        assert (await profile_of(database, partner.id)).timezone == "Europe/Dublin"

        # Time zone typed in: a bad one is refused, a city is understood.
        ask, _ = await step(sandbox, companion, lambda: user.press(zones, "set:tz:type"))
        assert "time zone" in ask["text"]
        bad, _ = await step(sandbox, companion, lambda: user.send_text("Narnia"))
        assert "I do not know that time zone" in bad["text"]
        assert (await profile_of(database, partner.id)).timezone == "Europe/Dublin"
        done, _ = await step(sandbox, companion, lambda: user.send_text("madrid"))
        assert "Europe/Madrid" in done["text"]
        profile = await profile_of(database, partner.id)
        assert profile.timezone == "Europe/Madrid" and profile.awaiting_input is None

        # Weekly check-in time.
        slots, _ = await step(sandbox, companion, lambda: user.press(menu, "set:menu:slot"))
        assert "set:slot:mon_morning" in buttons(slots).values()
        done, _ = await step(sandbox, companion, lambda: user.press(slots, "set:slot:mon_morning"))
        assert "weekly check-in is now on" in done["text"]
        profile = await profile_of(database, partner.id)
        assert (profile.checkin_weekday, profile.checkin_time) == (0, "10:00")

        # Quiet hours: a preset, then none.
        quiet, _ = await step(sandbox, companion, lambda: user.press(menu, "set:menu:quiet"))
        assert buttons(quiet)["10pm to 7am"] == "set:quiet:2200-0700"
        done, _ = await step(sandbox, companion, lambda: user.press(quiet, "set:quiet:2200-0700"))
        assert "10pm to 7am" in done["text"]
        profile = await profile_of(database, partner.id)
        assert (profile.quiet_start, profile.quiet_end) == ("22:00", "07:00")
        done, _ = await step(sandbox, companion, lambda: user.press(quiet, "set:quiet:none"))
        assert "no quiet hours" in done["text"]
        profile = await profile_of(database, partner.id)
        assert (profile.quiet_start, profile.quiet_end) == (NO_QUIET_HOURS, NO_QUIET_HOURS)
        assert quiet_hours(profile, PROTOCOL) is None

        menu2, _ = await step(sandbox, companion, lambda: user.send_command("settings"))
        assert "Madrid" in menu2["text"] and "South West" in menu2["text"]
        assert "Quiet hours: <b>none</b>" in menu2["text"] or "none" in menu2["text"]


FORGED = [
    "set:group:atlantis",
    "set:tz:Mars/Olympus",
    "set:tz:Europe/Madrid",  # a real zone, but not one the buttons offered
    "set:slot:midnight",
    "set:quiet:0000-2359",
    "set:menu:password",
    "set:bogus",
    "set:",
    "set:group:north:extra:" + "x" * 40,
]


async def test_forged_settings_buttons_change_nothing(
    partner, sandbox, database, database_url, tmp_path
):
    before = await profile_of(database, partner.id)
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        [menu, _] = await step(sandbox, companion, lambda: user.send_command("settings"))
        presses = [user.press(menu, data) for data in FORGED]
        await settle(companion, sandbox)
    for data, update in zip(FORGED, presses, strict=True):
        answer = sandbox.callback_answers[update["callback_query"]["id"]]
        assert "out of date" in answer.get("text", ""), data
    assert len(sandbox.sent_to(USER)) == 1, "no message for a forged button"
    after = await profile_of(database, partner.id)
    for column in (
        "group_key",
        "timezone",
        "checkin_weekday",
        "checkin_time",
        "quiet_start",
        "quiet_end",
        "awaiting_input",
    ):
        assert getattr(after, column) == getattr(before, column)


async def test_a_bad_name_is_refused_and_cancel_stops_waiting(
    partner, sandbox, database, database_url, tmp_path
):
    async with running_companion(sandbox, database_url, tmp_path) as companion:
        user = sandbox.user(USER, "Sam")
        [menu, _] = await step(sandbox, companion, lambda: user.send_command("settings"))
        [ask, _] = await step(sandbox, companion, lambda: user.press(menu, "set:menu:name"))
        [bad, _] = await step(sandbox, companion, lambda: user.send_text("x" * 300))
        assert "could not use that as a name" in bad["text"]
        await step(sandbox, companion, lambda: user.press(ask, "set:cancel"), expect=0)
        assert (await profile_of(database, partner.id)).awaiting_input is None
    async with database.sessions() as session:
        identity = (
            await session.execute(
                select(TelegramIdentity).where(TelegramIdentity.person_id == partner.id)
            )
        ).scalar_one()
    assert identity.preferred_name == "Sam"


# -- the rules -------------------------------------------------------------------------------


def test_quiet_hours_across_midnight_in_local_time() -> None:
    profile = PartnerProfile(timezone="Europe/London", quiet_start="21:00", quiet_end="08:00")
    summer = datetime(2025, 7, 1, 20, 30, tzinfo=UTC)  # 21:30 in London (BST)
    assert is_quiet(profile, PROTOCOL, summer)
    assert not is_quiet(profile, PROTOCOL, datetime(2025, 7, 1, 7, 0, tzinfo=UTC))  # 08:00 BST
    assert is_quiet(profile, PROTOCOL, datetime(2025, 1, 1, 7, 59, tzinfo=UTC))  # 07:59 GMT
    window = QuietHours(time(13), time(14))
    assert window.contains(time(13, 30)) and not window.contains(time(14))


def test_unset_quiet_hours_follow_the_protocol_and_equal_times_mean_none() -> None:
    unset = PartnerProfile(timezone="Europe/London", quiet_start=None, quiet_end=None)
    assert quiet_hours(unset, PROTOCOL) == QuietHours(time(21), time(8))
    none = PartnerProfile(timezone="Europe/London", quiet_start="00:00", quiet_end="00:00")
    assert quiet_hours(none, PROTOCOL) is None
    assert not is_quiet(none, PROTOCOL, datetime(2025, 1, 1, 3, tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        is_quiet(unset, PROTOCOL, datetime(2025, 1, 1, 3))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Europe/London", "Europe/London"),
        ("europe/paris", "Europe/Paris"),
        ("London", "Europe/London"),
        ("new york", "America/New_York"),
        ("Narnia", None),
        ("", None),
        ("../../etc/passwd", None),
        ("x" * 500, None),
    ],
)
def test_typed_time_zones(typed: str, zone: str | None) -> None:
    assert resolve_timezone(typed) == zone


@pytest.mark.parametrize(
    ("typed", "name"),
    [("  Sam  ", "Sam"), ("Mary Ann", "Mary Ann"), ("a\nb", None), ("", None), ("/start", None)],
)
def test_clean_name(typed: str, name: str | None) -> None:
    assert clean_name(typed, NAME_LIMIT) == name
