"""A month's approved time and expenses per partner, for a payment claim.

Unlike the research export this one carries names, because finance needs them; the file says
so in its first line. Only approved entries count; partners who gave nothing that month are
left out. The month is read in the study's own time zone (its first group's).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prompts import Prompts
from storage.models import PartnerProfile, Person, TelegramIdentity
from storage.queries.involvement import given_by

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """``YYYY-MM`` as the aware start of that month and of the next; None if not a month."""
    match = _MONTH.match(text.strip())
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, end


@dataclass(frozen=True)
class ClaimRow:
    """One partner's approved time in the month."""

    name: str
    pseudonym: str
    group: str
    payment: str
    minutes: int
    meetings: int
    expenses_pence: int


async def month_rows(session: AsyncSession, since: datetime, until: datetime) -> list[ClaimRow]:
    """Approved time and expenses per partner between ``since`` and ``until``, by name."""
    given = await given_by(session, since=since, until=until)
    if not given:
        return []
    rows = await session.execute(
        select(
            Person.id,
            Person.pseudonym,
            TelegramIdentity.called,
            PartnerProfile.group_key,
            PartnerProfile.payment_preference,
        )
        .outerjoin(TelegramIdentity, TelegramIdentity.person_id == Person.id)
        .outerjoin(PartnerProfile, PartnerProfile.person_id == Person.id)
        .where(Person.id.in_(list(given)))
    )
    found = []
    for pid, pseudonym, name, group, payment in rows:
        total = given[pid]
        if total.minutes == 0 and total.expenses_pence == 0:
            continue
        found.append(
            ClaimRow(
                name=name,
                pseudonym=pseudonym,
                group=group or "",
                payment=payment or "",
                minutes=total.minutes,
                meetings=total.meetings,
                expenses_pence=total.expenses_pence,
            )
        )
    return sorted(found, key=lambda r: (r.name.casefold(), r.pseudonym))


def claim_csv(prompts: Prompts, month: str, rows: list[ClaimRow]) -> str:
    """The claim as CSV text: a first line saying it carries names, then a header and rows."""
    out = io.StringIO()
    out.write("# " + prompts.label("involvement.export.notice", month=month) + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(prompts.labels("involvement.export.columns").values())
    for row in rows:
        writer.writerow(
            [
                row.name,
                row.pseudonym,
                row.group,
                row.payment,
                row.meetings,
                f"{row.minutes / 60:.2f}",
                f"{row.expenses_pence / 100:.2f}",
            ]
        )
    return out.getvalue()
