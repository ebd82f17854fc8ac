"""``companion report``: an impact report under GRIPP2 (short form) and the UK Standards for
Public Involvement, filled with what the bot recorded.

:func:`gather` reads counts and monthly medians (never names, except for a quote whose author
chose to be credited); any figure about fewer people than the protocol's
the protocol's ``min_group_size`` is replaced by "fewer than N", in tables and charts alike.
:func:`build` turns them into sections of words from ``prompts/<locale>/labels/research.yaml``;
:func:`render_html` lays them out with ``research/report.web.j2`` (self-contained: charts are
inline SVG from matplotlib) and :func:`render_pdf` with ReportLab (charts as PNG).
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.protocol import StudyProtocol
from bot.settings import Settings
from prompts import Prompts
from storage.crypto import TextCipher
from storage.models import (
    Answer,
    Checkin,
    CheckinStatus,
    Involvement,
    Meeting,
    OutboxMessage,
    OutboxStatus,
    PartnerProfile,
    Person,
    PersonStatus,
    Role,
    TelegramIdentity,
)
from storage.queries import research as q

TEMPLATE = "research/report.web.j2"
QUOTES = 6


@dataclass
class Chart:
    """One scale question's monthly medians (months with too few people left out)."""

    question: str
    title: str
    low: int
    high: int
    points: list[tuple[str, float]]
    svg: Markup = field(default_factory=Markup)  # filled in for the HTML page


@dataclass
class Facts:
    """What the bot knows, already protected against small numbers."""

    partners: int = 0
    by_group: list[tuple[str, str]] = field(default_factory=list)
    checkins: int = 0
    completed: int = 0
    missed: int = 0
    reminded: int = 0
    withdrawn: int = 0
    meetings: int = 0
    attended: int = 0
    minutes: int = 0
    sent: int = 0
    quote_ok: int = 0
    credit_ok: int = 0
    charts: list[Chart] = field(default_factory=list)
    quotes: list[tuple[str, str]] = field(default_factory=list)  # (words, who)


def _shown(prompts: Prompts, count: int, size: int) -> str:
    """A count of people, or "fewer than N" when it could identify someone."""
    if 0 < count < size:
        return prompts.label("research.report.suppressed", size=size)
    return str(count)


async def _scalar(session: AsyncSession, query: Any) -> int:
    return int((await session.execute(query)).scalar_one() or 0)


async def gather(
    session: AsyncSession,
    protocol: StudyProtocol,
    prompts: Prompts,
    cipher: TextCipher,
    window: q.Window,
) -> Facts:
    """Counts, monthly medians and consented quotes for the report."""
    size = protocol.min_group_size
    facts = Facts()
    partners = q.partners_in(window)
    groups = (
        await session.execute(
            select(PartnerProfile.group_key, func.count())
            .where(PartnerProfile.person_id.in_(partners))
            .group_by(PartnerProfile.group_key)
        )
    ).all()
    names = {g.key: g.name for g in protocol.groups}
    facts.by_group = [(names.get(k or "", k or ""), _shown(prompts, n, size)) for k, n in groups]
    facts.partners = sum(n for _, n in groups)
    facts.withdrawn = await _scalar(
        session,
        select(func.count())
        .select_from(Person)
        .where(Person.id.in_(partners), Person.status == PersonStatus.WITHDRAWN),
    )
    checkins = (
        await session.execute(
            select(Checkin.status, func.count())
            .where(Checkin.person_id.in_(partners), *window.covers(Checkin.due_at))
            .group_by(Checkin.status)
        )
    ).all()
    by_status = dict(checkins)
    facts.checkins = sum(by_status.values())
    facts.completed = by_status.get(CheckinStatus.COMPLETED, 0)
    facts.missed = by_status.get(CheckinStatus.MISSED, 0) + by_status.get(CheckinStatus.EXPIRED, 0)
    async for batch in q.stream(session, q.checkins(window)):
        facts.reminded += sum(1 for row in batch if row.reminded == "true")
    facts.meetings = await _scalar(
        session,
        select(func.count())
        .select_from(Meeting)
        .where(Meeting.cancelled_at.is_(None), *window.covers(Meeting.starts_at)),
    )
    attended = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Involvement.minutes), 0)).where(
                Involvement.person_id.in_(partners),
                Involvement.attended.is_(True),
                *window.covers(Involvement.occurred_at),
            )
        )
    ).one()
    facts.attended, facts.minutes = int(attended[0]), int(attended[1])
    facts.sent = await _scalar(
        session,
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENT, *window.covers(OutboxMessage.sent_at)),
    )
    consent = await _latest_consent(session, window)
    facts.quote_ok = sum(1 for c in consent.values() if c.get("quote_anonymously"))
    facts.credit_ok = sum(1 for c in consent.values() if c.get("credit_by_name"))
    facts.charts = await _charts(session, protocol, prompts, window, size)
    facts.quotes = await _quotes(session, prompts, cipher, window, consent)
    return facts


async def _latest_consent(session: AsyncSession, window: q.Window) -> dict[int, dict[str, bool]]:
    latest: dict[int, dict[str, bool]] = defaultdict(dict)
    async for batch in q.stream(session, q.consent_decisions(window)):
        for person_id, item, granted in batch:
            latest[person_id][item] = bool(granted)
    return latest


async def _charts(
    session: AsyncSession, protocol: StudyProtocol, prompts: Prompts, window: q.Window, size: int
) -> list[Chart]:
    scales = [question for question in protocol.questions if question.kind == "scale"]
    values: dict[tuple[str, str], list[int]] = defaultdict(list)
    people: dict[tuple[str, str], set[int]] = defaultdict(set)
    query = (
        select(Answer.question_key, Answer.person_id, Answer.value_number, Answer.answered_at)
        .where(
            Answer.superseded_at.is_(None),
            Answer.value_number.is_not(None),
            Answer.question_key.in_([s.key for s in scales]),
            Answer.person_id.in_(q.partners_in(window)),
            *window.covers(Answer.answered_at),
        )
        .order_by(Answer.answered_at)
    )
    async for batch in q.stream(session, query):
        for key, person_id, value, answered_at in batch:
            month = answered_at.strftime("%Y-%m")
            values[(key, month)].append(value)
            people[(key, month)].add(person_id)
    charts = []
    for question in scales:
        months = sorted(m for k, m in values if k == question.key)
        points = [
            (m, float(statistics.median(values[(question.key, m)])))
            for m in months
            if len(people[(question.key, m)]) >= size
        ]
        charts.append(
            Chart(
                question.key,
                _question_title(prompts, question.wording),
                question.min or 0,
                question.max or 0,
                points,
            )
        )
    return charts


def _question_title(prompts: Prompts, wording: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", prompts.render(wording, name="")).strip()


async def _quotes(
    session: AsyncSession,
    prompts: Prompts,
    cipher: TextCipher,
    window: q.Window,
    consent: dict[int, dict[str, bool]],
) -> list[tuple[str, str]]:
    agreed = [pid for pid, c in consent.items() if c.get("quote_anonymously")]
    if not agreed:
        return []
    rows = (
        await session.execute(
            select(Answer.person_id, Answer.value_text, Answer.text_encrypted)
            .join(Person, Person.id == Answer.person_id)
            .where(
                Answer.person_id.in_(agreed),
                Answer.value_text.is_not(None),
                Answer.superseded_at.is_(None),
                Person.status != PersonStatus.WITHDRAWN,
                Person.role == Role.PARTNER,
                *window.covers(Answer.answered_at),
            )
            .order_by(Answer.answered_at.desc())
            .limit(QUOTES)
        )
    ).all()
    credited = [pid for pid in {r[0] for r in rows} if consent[pid].get("credit_by_name")]
    names: dict[int, str] = {}
    if credited:
        found = await session.execute(
            select(TelegramIdentity.person_id, TelegramIdentity.preferred_name).where(
                TelegramIdentity.person_id.in_(credited)
            )
        )
        names = {pid: name for pid, name in found.all() if name}
    anonymous = prompts.label("research.impact.anonymous")
    quotes = []
    for person_id, stored, encrypted in rows:
        if stored is None:
            continue
        try:
            words = cipher.decrypt(stored, encrypted)
        except ValueError:
            continue
        quotes.append((words, names.get(person_id, anonymous)))
    return quotes


# -- the report ------------------------------------------------------------------------------


@dataclass
class Section:
    """One heading of the report with its paragraphs, an optional table and charts."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[tuple[str, str]] = field(default_factory=list)
    table_head: tuple[str, str] | None = None
    charts: list[Chart] = field(default_factory=list)
    quotes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    """The report as words, ready for HTML or PDF."""

    title: str
    made: str
    gripp2_title: str
    gripp2: list[Section]
    standards_title: str
    standards: list[Section]
    size: int
    not_shown: str


def build(
    protocol: StudyProtocol, prompts: Prompts, facts: Facts, *, made: datetime, window: q.Window
) -> Report:
    """The report's sections in words."""
    say = prompts.label
    size = protocol.min_group_size
    shown = {
        name: _shown(prompts, getattr(facts, name), size)
        for name in ("partners", "withdrawn", "quote_ok", "credit_ok")
    }
    period = ""
    if window.since or window.until:
        period = say(
            "research.impact.period",
            since=window.since.date().isoformat() if window.since else "…",
            until=window.until.date().isoformat() if window.until else "…",
        )
    share = f"{round(100 * facts.completed / facts.checkins)}%" if facts.checkins else "0%"
    item = "research.impact.gripp2_items."
    gripp2 = [
        Section(
            say(item + "aim"),
            [say("research.impact.aim", team=protocol.study.team, study=protocol.study.name)],
        ),
        Section(
            say(item + "methods"),
            [
                say(
                    "research.impact.methods",
                    partners=shown["partners"],
                    groups=len(facts.by_group),
                    checkins=facts.checkins,
                    completed=facts.completed,
                    meetings=facts.meetings,
                )
            ],
            table=facts.by_group,
            table_head=(say("research.impact.group"), say("research.impact.people")),
        ),
        Section(
            say(item + "results"),
            [say("research.impact.results", size=size), say("research.impact.quotes")]
            if facts.quotes
            else [say("research.impact.results", size=size), say("research.impact.no_quotes")],
            charts=facts.charts,
            quotes=facts.quotes,
        ),
        Section(say(item + "discussion"), [say("research.impact.discussion")]),
        Section(
            say(item + "reflections"),
            [
                say(
                    "research.impact.reflections",
                    completed_share=share,
                    missed=facts.missed,
                    withdrawn=shown["withdrawn"],
                    size=size,
                )
            ],
        ),
    ]
    item = "research.impact.standards_items."
    standards = [
        Section(
            say(item + "inclusive"),
            [say("research.impact.inclusive", groups=len(facts.by_group))],
        ),
        Section(
            say(item + "working_together"),
            [
                say(
                    "research.impact.working_together",
                    meetings=facts.meetings,
                    attended=facts.attended,
                )
            ],
        ),
        Section(say(item + "support"), [say("research.impact.support", reminded=facts.reminded)]),
        Section(
            say(item + "governance"),
            [
                say(
                    "research.impact.governance",
                    quote=shown["quote_ok"],
                    credit=shown["credit_ok"],
                )
            ],
        ),
        Section(
            say(item + "communications"),
            [say("research.impact.communications", sent=facts.sent)],
        ),
        Section(
            say(item + "impact"),
            [say("research.impact.impact", hours=round(facts.minutes / 60, 1))],
        ),
    ]
    return Report(
        title=say("research.impact.title", study=protocol.study.name),
        made=say("research.impact.made", made=made.strftime("%Y-%m-%d"), period=period),
        gripp2_title=say("research.impact.gripp2"),
        gripp2=gripp2,
        standards_title=say("research.impact.standards"),
        standards=standards,
        size=size,
        not_shown=say("research.impact.not_shown", size=size),
    )


def _figure(chart: Chart, prompts: Prompts) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 2.4), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    months = [m for m, _ in chart.points]
    axes.plot(months, [v for _, v in chart.points], marker="o", color="#1f5f8b")
    axes.set_ylim(chart.low - 0.3, chart.high + 0.3)
    axes.set_yticks(range(chart.low, chart.high + 1))
    axes.set_ylabel(prompts.label("research.impact.chart_median"))
    axes.set_xlabel(prompts.label("research.impact.chart_month"))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def chart_svg(chart: Chart, prompts: Prompts) -> str:
    """The chart as an inline SVG element (no external references)."""
    buffer = io.StringIO()
    _figure(chart, prompts).savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def chart_png(chart: Chart, prompts: Prompts) -> bytes:
    """The chart as a PNG (for the PDF)."""
    buffer = io.BytesIO()
    _figure(chart, prompts).savefig(buffer, format="png", dpi=150)
    return buffer.getvalue()


def render_html(report: Report, prompts: Prompts) -> str:
    """The self-contained HTML page."""
    environment = Environment(
        loader=FileSystemLoader(prompts.root / prompts.locale),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for section in report.gripp2:
        for chart in section.charts:
            if chart.points:
                chart.svg = Markup(chart_svg(chart, prompts))  # noqa: S704 - matplotlib's SVG
    return environment.get_template(TEMPLATE).render(report=report)


def render_pdf(report: Report, prompts: Prompts, path: Path) -> None:
    """The same report as a PDF (ReportLab), written to ``path``."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph(escape(report.title), styles["Title"]),
        Paragraph(escape(report.made), styles["Italic"]),
    ]
    for part, sections in (
        (report.gripp2_title, report.gripp2),
        (report.standards_title, report.standards),
    ):
        story.append(Paragraph(escape(part), styles["Heading1"]))
        for section in sections:
            story.append(Paragraph(escape(section.title), styles["Heading2"]))
            story += [Paragraph(escape(text), styles["BodyText"]) for text in section.paragraphs]
            if section.table and section.table_head:
                table = Table([list(section.table_head), *[list(r) for r in section.table]])
                table.setStyle(
                    TableStyle(
                        [
                            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                            ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ]
                    )
                )
                story += [Spacer(1, 0.2 * cm), table]
            for chart in section.charts:
                story.append(Paragraph(escape(chart.title), styles["Heading3"]))
                if chart.points:
                    story.append(
                        Image(io.BytesIO(chart_png(chart, prompts)), width=15 * cm, height=6 * cm)
                    )
                else:
                    story.append(Paragraph(escape(report.not_shown), styles["Italic"]))
            for words, who in section.quotes:
                story.append(Paragraph(f"“{escape(words)}” — {escape(who)}", styles["BodyText"]))
    document = SimpleDocTemplate(
        str(path), pagesize=A4, title=report.title, author="Involvement Companion"
    )
    document.build(story)


async def make_report(
    db: Any,
    settings: Settings,
    protocol: StudyProtocol,
    prompts: Prompts,
    window: q.Window,
    *,
    made: datetime,
) -> Report:
    """Read the facts and build the report."""
    async with db.sessions() as session:
        facts = await gather(session, protocol, prompts, settings.text_cipher(), window)
    return build(protocol, prompts, facts, made=made, window=window)
