"""``companion report``: an impact report under GRIPP2 and the UK Standards, with small groups
protected, quotes only by consent, inline SVG charts, and a PDF that renders."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from bot.tools.cli import app
from prompts import DEFAULT_STUDY_PATH
from tests.factories import enrol
from tests.support import SECRET
from tests.tools_support import Given, add_checkin, day


async def study(database) -> None:
    """Six partners in the north (enough to show) and two in the south (too few)."""
    for n in range(6):
        consents = {"take_part": True, "quote_anonymously": n < 2, "credit_by_name": n == 0}
        person = await enrol(
            database, 7100 + n, name=f"Northerner{n}", group="north", consents=consents
        )
        for month, value in ((3, 2 + n % 2), (4, 3 + n % 2)):
            answers = [Given("confidence", value, day(month, 3 + n))]
            if n < 3 and month == 4:
                answers.append(
                    Given("reflection", f"I spoke up at meeting {n}", day(4, 3 + n, 13))
                )
            await add_checkin(database, person.id, answers)
    for n in range(2):
        await enrol(database, 7200 + n, name=f"Southerner{n}", group="south")


def run(database_url: str, tmp_path: Path, *args: str):
    env = {
        "DATABASE_URL": database_url,
        "COMPANION_SECRET_KEY": SECRET,
        "COMPANION_STUDY": str(DEFAULT_STUDY_PATH),
    }
    return CliRunner().invoke(app, ["report", *args], env=env)


async def test_the_report_is_grouped_protected_and_renders_as_html_and_pdf(
    database, database_url, tmp_path
):
    await study(database)
    html_path, pdf_path = tmp_path / "report.html", tmp_path / "report.pdf"
    result = await asyncio.to_thread(
        run, database_url, tmp_path, "--out", str(html_path), "--pdf", str(pdf_path)
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote the impact report to {html_path}." in result.stdout
    html = html_path.read_text(encoding="utf-8")
    for heading in (
        "1. Aim of involvement",
        "5. Reflections and critical perspective",
        "Inclusive opportunities",
        "Working together",
        "Support and learning",
        "Governance",
        "Communications",
        "Impact",
    ):
        assert heading in html, heading
    # Self-contained: the chart is inline SVG, nothing is fetched.
    assert "<svg" in html and "src=" not in html and 'href="http' not in html
    # The south has two partners: their count is not shown.
    assert "<td>North West</td><td>6</td>" in html
    assert "<td>South West</td><td>fewer than 5</td>" in html
    # Quotes: only those who agreed; a name only for the one who chose credit.
    assert "I spoke up at meeting 0" in html and "— Northerner0" in html
    assert "I spoke up at meeting 1" in html and "— a Community Partner" in html
    assert "meeting 2" not in html, "partner 2 did not agree to be quoted"
    for n in range(1, 6):
        assert f"Northerner{n}" not in html
    assert "Southerner" not in html

    # The PDF's first page renders, and has text and a chart on it.
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(pdf_path))
    assert len(pdf) >= 1
    page = pdf[0]
    text = page.get_textpage().get_text_range()
    assert "Involvement impact report" in text and "GRIPP2" in text
    image = page.render(scale=1.5).to_pil()
    image.save(tmp_path / "report-page-1.png")
    dark = sum(image.convert("L").histogram()[:128])
    assert image.width > 800 and dark > 5000, "the page has visible text and lines"
    page.close()
    pdf.close()


async def test_a_bad_date_is_one_sentence(database, database_url, tmp_path):
    result = await asyncio.to_thread(
        run, database_url, tmp_path, "--out", str(tmp_path / "r.html"), "--since", "soon"
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "--since must be a date like 2026-03-31 (it is 'soon')."
