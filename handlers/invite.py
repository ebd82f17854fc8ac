"""``/invite`` (connectors): make an invite link with a QR code, list unused ones, revoke one.

Thin: parse the update, call :mod:`bot.partners.invites` and :mod:`bot.connector.invites`,
reply. Buttons: ``inv:p`` a partner invite (then ``inv:g:<group>``), ``inv:s:<role>`` a staff
invite (only when ``COMPANION_STAFF_INVITES`` allows it), ``inv:x:<id>`` revoke. The link goes
out through the outbox; the QR code image is sent after the commit, from memory, so the code
is never written to disk (only its hash is kept).
"""

from __future__ import annotations

import logging
from functools import partial

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.calendar.words import day_words
from bot.connector import invites as unused_invites
from bot.connector.invites import qr_png_bytes
from bot.context import BotContext
from bot.partners.invites import InviteError, create_invites, deep_link
from bot.transport.callbacks import fields, number
from handlers.guards import connector_only
from storage.clock import utcnow
from storage.models import Role

PREFIX = "inv"  # not "iv": the involvement review uses it
STAFF_ROLES = (Role.CONNECTOR, Role.RESEARCHER)
log = logging.getLogger(__name__)


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


@connector_only
async def invite_command(update: Update, context: BotContext) -> None:
    """Unused invites (each with Revoke), and buttons for a new one."""
    label, now = context.prompts.label, utcnow()
    zone = context.protocol.groups[0].zone
    rows = [[_button(label("invite.buttons.partner"), f"{PREFIX}:p")]]
    if context.settings.companion_staff_invites:
        for role in STAFF_ROLES:
            rows.append([_button(label(f"invite.buttons.{role}"), f"{PREFIX}:s:{role}")])
    listed = []
    for invite in await unused_invites.unused(context.session, now=now):
        group = context.protocol.group(invite.group_key)
        listed.append(
            {
                "id": invite.id,
                "role": invite.role,
                "group": group.name if group is not None else "",
                "expires": day_words(context.prompts, invite.expires_at, zone),
            }
        )
        rows.append(
            [_button(label("invite.buttons.revoke", id=invite.id), f"{PREFIX}:x:{invite.id}")]
        )
    await context.reply(
        update, "invite/menu", reply_markup=InlineKeyboardMarkup(rows), invites=listed
    )


@connector_only
async def invite_button(update: Update, context: BotContext) -> None:
    """An ``inv:`` button (see the module docstring)."""
    query, person, label = update.callback_query, context.person, context.prompts.label
    parts = fields(query.data, PREFIX) if query is not None else None
    if person is None or not parts:
        context.answer_button(update, label("invite.out_of_date"))
        return
    action, args = parts[0], parts[1:]
    if action == "p" and not args:
        rows = [[_button(g.name, f"{PREFIX}:g:{g.key}")] for g in context.protocol.groups]
        context.answer_button(update)
        await context.ask(update, "invite/choose_group", reply_markup=InlineKeyboardMarkup(rows))
    elif action == "g" and len(args) == 1 and context.protocol.group(args[0]) is not None:
        await _make(update, context, Role.PARTNER, args[0])
    elif (
        action == "s"
        and len(args) == 1
        and context.settings.companion_staff_invites
        and args[0] in [str(r) for r in STAFF_ROLES]
    ):
        await _make(update, context, Role(args[0]), None)
    elif action == "x" and len(args) == 1 and (invite_id := number(args[0])) is not None:
        done = await unused_invites.revoke(
            context.session, invite_id, by_person_id=person.id, now=utcnow()
        )
        context.answer_button(update, label("invite.revoked" if done else "invite.out_of_date"))
        if done:
            context.edit_buttons(update, None)
    else:
        context.answer_button(update, label("invite.out_of_date"))


async def _make(update: Update, context: BotContext, role: Role, group: str | None) -> None:
    person, chat = context.person, update.effective_chat
    if person is None or chat is None:
        return
    try:
        (made,) = await create_invites(
            context.session,
            context.protocol,
            role=role,
            group_key=group,
            actor_person_id=person.id,
        )
    except InviteError:
        context.answer_button(update, context.prompts.label("invite.out_of_date"))
        return
    link = deep_link(context.bot.username, made.code)
    group_def = context.protocol.group(group)
    context.answer_button(update)
    context.edit_buttons(update, None)
    await context.reply(
        update,
        "invite/made",
        link=link,
        role=str(role),
        group=group_def.name if group_def is not None else "",
        expires=day_words(context.prompts, made.expires_at, context.protocol.groups[0].zone),
    )
    caption = context.prompts.render("invite/qr_caption", role=str(role))
    context.after_commit(partial(_send_qr, context.bot, chat.id, link, caption))


async def _send_qr(bot: Bot, chat_id: int, link: str, caption: str) -> None:
    try:
        await bot.send_photo(
            chat_id=chat_id,
            photo=InputFile(qr_png_bytes(link), filename="invite.png"),
            caption=caption,
        )
    except TelegramError as exc:  # the link itself went through the outbox
        log.info("could not send an invite's QR code (%s)", type(exc).__name__)


HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    CommandHandler("invite", invite_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(invite_button, pattern=rf"^{PREFIX}:"),
]
