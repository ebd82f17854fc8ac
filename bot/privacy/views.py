"""What a partner sees of their own data: ``/withdraw``'s question and goodbye, ``/mydata``."""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.protocol import StudyProtocol
from bot.transport.view import View, render_view
from prompts import Prompts
from storage.models import PartnerProfile


def confirm_keyboard(prompts: Prompts, stamp: int) -> InlineKeyboardMarkup:
    """The ``/withdraw`` question's buttons: "Yes, stop" (``wd:yes:<stamp>``) and "No"."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    prompts.label("tools.withdraw.yes"), callback_data=f"wd:yes:{stamp}"
                )
            ],
            [InlineKeyboardButton(prompts.label("tools.withdraw.no"), callback_data="wd:no")],
        ]
    )


def confirm_withdrawal(
    prompts: Prompts, protocol: StudyProtocol, profile: PartnerProfile | None, *, now: datetime
) -> View:
    """What stopping means (as the protocol says), asked once; the button works for a day."""
    return render_view(
        prompts,
        "withdraw/confirm",
        confirm_keyboard(prompts, int(now.timestamp())),
        data_policy=protocol.withdrawal.data,
        connector=protocol.connector_of(profile.group_key if profile is not None else None),
    )


def kept_going(prompts: Prompts) -> View:
    """They chose not to stop."""
    return render_view(prompts, "withdraw/kept_going")


def goodbye(prompts: Prompts, protocol: StudyProtocol) -> View:
    """The last message a withdrawn partner gets: what happens to their data, where help is."""
    return render_view(
        prompts,
        "withdraw/goodbye",
        data_policy=protocol.withdrawal.data,
        crisis_resources=protocol.crisis_resources,
    )


def mydata_caption(prompts: Prompts) -> View:
    """The caption of the ``/mydata`` zip."""
    return render_view(prompts, "mydata/caption")


def mydata_readme(
    prompts: Prompts,
    *,
    study: str,
    made: datetime,
    pseudonym: str,
    counts: dict[str, int],
    voice: bool,
) -> str:
    """The README inside the ``/mydata`` zip: what each file holds (``counts``: rows per table)."""
    return prompts.text(
        "mydata/readme",
        study=study,
        made=made.strftime("%Y-%m-%d %H:%M"),
        pseudonym=pseudonym,
        tables=[
            {
                "file": f"{name}.csv",
                "about": prompts.label(f"tools.mydata.tables.{name}"),
                "rows": count,
            }
            for name, count in counts.items()
        ],
        voice=voice,
    )
