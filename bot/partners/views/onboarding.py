"""Onboarding, step by step: the welcome, each consent item, name, group, slot, and done.

:func:`step_views` gives the message(s) of a partner's current step; the per-step functions
are what it (and ``companion preview``) is made of.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.partners import onboarding as ob
from bot.protocol import ConsentItem, StudyProtocol
from bot.text import clean_name
from bot.transport.view import View, render_view
from prompts import Prompts
from storage.models import PartnerProfile, TelegramIdentity


def _button(text: str, step: str, value: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=ob.callback_data(step, value))


def _column(buttons: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    """One button per row: big targets on small screens."""
    return InlineKeyboardMarkup([[b] for b in buttons])


def step_keyboard(
    prompts: Prompts, protocol: StudyProtocol, step: str, *, first_name: str | None = None
) -> InlineKeyboardMarkup | None:
    """The buttons sent with onboarding ``step`` (None: that step has none).

    The welcome's button goes under its second message (the safety note). At the name step,
    ``first_name`` (their Telegram first name) is offered as a button when it is usable.
    """
    if step == ob.WELCOME:
        label = prompts.label("onboarding.start_button")
        return _column([_button(label, ob.WELCOME, ob.WELCOME_OK)])
    item = ob.consent_item_for(protocol, step)
    if item is not None:
        kind = "required" if item.required else "optional"
        return InlineKeyboardMarkup(
            [
                [_button(prompts.label(f"onboarding.yes_{kind}"), step, ob.YES)],
                [_button(prompts.label(f"onboarding.no_{kind}"), step, ob.NO)],
            ]
        )
    if step == ob.NAME:
        first = clean_name(first_name, ob.NAME_MAX)
        if first is None:
            return None
        label = prompts.label("onboarding.use_telegram_name", name=first)
        return _column([_button(label, ob.NAME, ob.USE_TELEGRAM_NAME)])
    if step == ob.GROUP:
        return _column([_button(g.name, ob.GROUP, g.key) for g in protocol.groups])
    if step == ob.SLOT:
        buttons = [_button(prompts.label(s.label), ob.SLOT, s.key) for s in protocol.checkin_slots]
        buttons.append(_button(prompts.label("onboarding.slot_later"), ob.SLOT, ob.SLOT_LATER))
        return _column(buttons)
    return None


def welcome(
    prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile, *, name: str
) -> View:
    """The first message: who the study is and who their connector is."""
    return render_view(
        prompts,
        "onboarding/welcome",
        name=name,
        study=protocol.study.name,
        team=protocol.study.team,
        connector=protocol.connector_of(profile.group_key),
    )


def safety(prompts: Prompts, protocol: StudyProtocol) -> View:
    """The welcome's second message: not monitored all the time, and where to get help."""
    return render_view(
        prompts,
        "onboarding/safety",
        step_keyboard(prompts, protocol, ob.WELCOME),
        monitored_hours=protocol.study.monitored_hours,
        crisis_resources=protocol.crisis_resources,
    )


def consent(prompts: Prompts, protocol: StudyProtocol, item: ConsentItem) -> View:
    """One consent item, in the protocol's wording, with its yes and no."""
    return render_view(
        prompts,
        item.wording,
        step_keyboard(prompts, protocol, ob.consent_step(item)),
        study=protocol.study.name,
        team=protocol.study.team,
        withdrawal=protocol.withdrawal.data,
    )


def ask_name(prompts: Prompts, protocol: StudyProtocol, *, first_name: str | None) -> View:
    """What they would like to be called (their Telegram name offered as a button)."""
    markup = step_keyboard(prompts, protocol, ob.NAME, first_name=first_name)
    return render_view(prompts, "onboarding/ask_name", markup, has_button=markup is not None)


def ask_group(prompts: Prompts, protocol: StudyProtocol, *, name: str) -> View:
    """Which group they belong to (when the invite did not say)."""
    markup = step_keyboard(prompts, protocol, ob.GROUP)
    return render_view(prompts, "onboarding/ask_group", markup, name=name)


def ask_slot(prompts: Prompts, protocol: StudyProtocol, *, name: str) -> View:
    """When the weekly check-in suits them."""
    markup = step_keyboard(prompts, protocol, ob.SLOT)
    return render_view(prompts, "onboarding/ask_slot", markup, name=name)


def done(prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile, *, name: str) -> View:
    """Set up: their check-in time, their connector and their quiet hours."""
    slot = ob.slot_of(protocol, profile)
    return render_view(
        prompts,
        "onboarding/done",
        name=name,
        slot=prompts.label(slot.label) if slot is not None else None,
        connector=protocol.connector_of(profile.group_key),
        team=protocol.study.team,
        quiet_start=profile.quiet_start or protocol.quiet_hours.start,
        quiet_end=profile.quiet_end or protocol.quiet_hours.end,
    )


def declined(prompts: Prompts, *, again: bool = False) -> View:
    """They said no to taking part (``again``: they wrote after saying no)."""
    return render_view(prompts, "onboarding/declined_reminder" if again else "onboarding/declined")


def name_invalid(prompts: Prompts) -> View:
    """A typed name that cannot be used."""
    return render_view(prompts, "onboarding/name_invalid", most=ob.NAME_MAX)


def step_views(
    prompts: Prompts,
    protocol: StudyProtocol,
    profile: PartnerProfile,
    identity: TelegramIdentity | None,
    *,
    resumed: bool = False,
) -> list[View]:
    """The message(s) of the partner's current step (a step this version knows).

    ``resumed``: they wrote while resting at "declined", so they are reminded, not told again.
    """
    name = identity.called if identity is not None else ""
    step = profile.onboarding_step
    if step == ob.WELCOME:
        return [welcome(prompts, protocol, profile, name=name), safety(prompts, protocol)]
    if (item := ob.consent_item_for(protocol, step)) is not None:
        return [consent(prompts, protocol, item)]
    if step == ob.NAME:
        first_name = identity.first_name if identity is not None else None
        return [ask_name(prompts, protocol, first_name=first_name)]
    if step == ob.GROUP:
        return [ask_group(prompts, protocol, name=name)]
    if step == ob.SLOT:
        return [ask_slot(prompts, protocol, name=name)]
    if step == ob.DONE:
        return [done(prompts, protocol, profile, name=name)]
    if step == ob.DECLINED:
        return [declined(prompts, again=resumed)]
    raise ValueError(f"unknown onboarding step {step!r}")
