"""How a partner would like to be thanked for their time: paid, a voucher, or neither.

Asked once (at their first ``/log``) with a note to seek benefits advice before accepting
payment, and changeable in ``/settings``.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from prompts import Prompts
from storage.models import PartnerProfile, PaymentPreference

CHOICES = tuple(p.value for p in PaymentPreference)


def set_payment(profile: PartnerProfile, choice: str) -> bool:
    """Store the partner's choice; False (nothing changed) for a choice not offered."""
    if choice not in CHOICES:
        return False
    profile.payment_preference = choice
    return True


def payment_words(prompts: Prompts, choice: str | None) -> str:
    """The choice in words (``not chosen yet`` before they chose)."""
    if choice not in CHOICES:
        return prompts.label("involvement.payment.not_chosen")
    return prompts.label(f"involvement.payment.{choice}")


def payment_rows(prompts: Prompts, prefix: str) -> list[list[InlineKeyboardButton]]:
    """One button per choice, with callback data ``<prefix><choice>``."""
    return [
        [InlineKeyboardButton(payment_words(prompts, c), callback_data=f"{prefix}{c}")]
        for c in CHOICES
    ]


def payment_keyboard(prompts: Prompts) -> InlineKeyboardMarkup:
    """The first time it is asked, from ``/log`` (``lg:pay:<choice>``)."""
    return InlineKeyboardMarkup(payment_rows(prompts, "lg:pay:"))
