"""``companion preview``: every message of a protocol on one page, and clear errors when not."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import urllib.request
from html import unescape
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.tools.cli import app
from bot.tools.preview import (
    PreviewError,
    build_preview,
    make_server,
    render_page,
    telegram_to_page_html,
)
from bot.tools.readability import is_staff_template, score_html
from prompts import DEFAULT_STUDY_PATH, PROMPTS_DIR, Prompts

LOCALE = PROMPTS_DIR / "en-GB"
runner = CliRunner()


def templates_of(folder: Path) -> list[str]:
    """Every template of a locale folder, except the page's own (``preview/``)."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.j2")
        if p.relative_to(folder).parts[0] != "preview"
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The page for the shipped protocol and wording, written by the command itself."""
    out = tmp_path_factory.mktemp("preview") / "preview.html"
    result = runner.invoke(app, ["preview", "--study", str(DEFAULT_STUDY_PATH), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    return out.read_text(encoding="utf-8")


@pytest.fixture
def locale_copy(tmp_path: Path) -> Path:
    """A copy of the shipped wording folder to edit."""
    copy = tmp_path / "words" / "en-GB"
    shutil.copytree(LOCALE, copy)
    return copy


def test_every_template_of_the_locale_is_on_the_page(page: str) -> None:
    missing = [t for t in templates_of(LOCALE) if f"<code>{t}</code>" not in page]
    assert not missing, f"not on the page: {missing}"


def test_partner_messages_are_in_the_journey_with_real_values() -> None:
    preview = build_preview(DEFAULT_STUDY_PATH, chart=False)
    journey = {t for stage in preview.stages for s in stage.bubbles for t in s.templates}
    partner = {
        t
        for t in templates_of(LOCALE)
        if t.endswith(".html.j2") and not is_staff_template(LOCALE / t)
    }
    assert partner <= journey, sorted(partner - journey)
    assert not preview.other  # every shipped template has its place in the journey
    # The journey's own messages use values from the protocol, not sample files.
    sampled = [
        s.templates for st in preview.stages for s in st.bubbles if s.when == "sample_values"
    ]
    assert not sampled, sampled
    weekly = next(stage for stage in preview.stages if stage.key == "checkin:weekly")
    nudge = weekly.sometimes[0]
    assert nudge.templates[:2] == ("checkins/question.html.j2", "checkins/nudge.html.j2")
    assert nudge.buttons[0] == ("1", "2", "3", "4", "5")
    # Stages come in the order a partner meets them; check-ins in protocol order.
    keys = [stage.key for stage in preview.stages]
    assert keys[:3] == ["joining", "consent", "setting_up"]
    checkins = [k for k in keys if k.startswith("checkin:")]
    assert checkins == ["checkin:weekly", "checkin:after_meeting", "checkin:monthly"]
    assert keys.index("meetings") < keys.index("checkin:after_meeting")


def test_the_page_shows_buttons_scores_and_telegram_formatting(page: str) -> None:
    prompts = Prompts()
    protocol = yaml.safe_load(DEFAULT_STUDY_PATH.read_text(encoding="utf-8"))
    labels = [
        prompts.label("onboarding.start_button"),
        prompts.label("onboarding.yes_required"),
        prompts.label("checkins.skip"),
        prompts.label("scales.confidence_low"),
        prompts.label("choices.better"),
        prompts.label("tools.withdraw.yes"),
        prompts.label("tools.pause.one_week"),
        prompts.label("safeguarding.on_it"),
        *(g["name"] for g in protocol["groups"]),
        *(prompts.label(s["label"]) for s in protocol["checkin_slots"]),
    ]
    text = unescape(page)
    assert not [label for label in labels if label not in text]
    assert '<span class="kb">1</span><span class="kb">2</span>' in page  # a scale's row
    assert re.search(r"Reading ease \d+: plain", page)
    assert page.count("Reading ease") > 60
    # A branching question says when it is asked.
    assert "Asked only if the answer to &ldquo;How confident" in page
    # Telegram's own markup is shown as such; the page is self-contained and accessible.
    assert "<b>How confident do you feel about taking part right now?</b>" in page
    assert '<html lang="en-GB">' in page
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:|#|https?://)', page)
    assert "data:image/png;base64," in page  # the /journey chart, inline
    assert "<h2" in page and "<h1" in page


def test_another_protocol_shows_its_own_groups_branches_and_policy(tmp_path: Path) -> None:
    text = DEFAULT_STUDY_PATH.read_text(encoding="utf-8")
    text = text.replace("  data: keep", "  data: delete")
    text = text.replace(
        "  - key: online\n",
        "  - key: east\n    name: East Side\n"
        "    timezone: Europe/London\n    connector: Ola\n  - key: online\n",
    )
    text = text.replace(
        "    ask_if: {question: confidence, at_most: 2}",
        "    ask_if: {question: confidence, at_least: 4}",
    )
    study = tmp_path / "study.yaml"
    study.write_text(text, encoding="utf-8")
    html = render_page(build_preview(study, chart=False))
    assert '<span class="kb">East Side</span>' in html
    assert "is 4 or more</p>" in html
    assert "What you have shared will be deleted" in html
    assert str(study) in html


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["preview", "--serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in result.output


def test_hard_to_read_messages_are_marked_in_words_not_colour_alone(locale_copy: Path) -> None:
    (locale_copy / "pause" / "not_paused.html.j2").write_text(
        "Notwithstanding considerable administrative considerations, "
        "unparalleled organisational interdependencies necessitate comprehensive "
        "reconsideration of institutional participation arrangements.\n",
        encoding="utf-8",
    )
    preview = build_preview(DEFAULT_STUDY_PATH, locale_copy, chart=False)
    hard = [s.templates[0] for s in preview.hard]
    assert "pause/not_paused.html.j2" in hard
    html = render_page(preview)
    assert "hard to read" in html
    assert "&#9888;" in html  # an icon as well as the colour


def test_an_edited_copy_of_the_wording_shows_the_edit(locale_copy: Path, tmp_path: Path) -> None:
    (locale_copy / "questions" / "confidence.html.j2").write_text(
        "How <i>sure</i> do you feel today, {{ name }} & co?\n", encoding="utf-8"
    )
    examples = locale_copy / "preview" / "examples.yaml"
    data = yaml.safe_load(examples.read_text(encoding="utf-8"))
    data["partner_name"] = "Ade <script>"
    examples.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["preview", "--locale-dir", str(locale_copy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "How <i>sure</i> do you feel today, Ade &lt;script&gt; &amp; co?" in page
    assert "<script" not in page.lower()
    assert str(locale_copy) in page


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda text: text.replace("[what_changed, proud]", "[what_changed, prowd]"),
            r"study\.yaml:\d+: checkins\.2\.questions\.1 'prowd' is not one of the questions",
        ),
        (
            lambda text: text.replace("  name: DeStress Involvement", '  name: "DeStress'),
            r"study\.yaml:\d+: .*check the indentation and quotes on that line",
        ),
    ],
    ids=["unknown-question", "bad-yaml"],
)
def test_a_broken_protocol_is_a_clear_error(tmp_path: Path, change, expected: str) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(change(DEFAULT_STUDY_PATH.read_text(encoding="utf-8")), encoding="utf-8")
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["preview", "--study", str(study), "--out", str(out)])
    assert result.exit_code == 1
    assert "The study protocol has a problem" in result.output
    assert re.search(expected, result.output), result.output
    assert not out.exists()


def test_template_problems_name_the_file_and_what_is_wrong(locale_copy: Path) -> None:
    (locale_copy / "questions" / "valued.html.j2").unlink()
    (locale_copy / "questions" / "proud.html.j2").write_text("Hi {{ nickname }}\n")
    (locale_copy / "checkins" / "closed.html.j2").write_text("{% if x %}\n")
    (locale_copy / "pause" / "paused.html.j2").write_text("<div>Enjoy</div>\n")
    result = runner.invoke(
        app, ["preview", "--locale-dir", str(locale_copy), "--out", str(locale_copy / "x.html")]
    )
    assert result.exit_code == 1
    out = result.output
    assert "4 problems" in out
    assert "questions/valued.html.j2: this template does not exist" in out
    assert "(questions.valued)" in out
    assert "questions/proud.html.j2: it uses a value the bot does not give it" in out
    assert "'nickname' is undefined" in out
    assert "checkins/closed.html.j2:1: the template cannot be read" in out
    assert (
        'pause/paused.html.j2: Telegram would refuse this message: Unsupported start tag "div"'
        in out
    )
    with pytest.raises(PreviewError) as caught:
        build_preview(DEFAULT_STUDY_PATH, locale_copy, chart=False)
    assert {p.kind for p in caught.value.problems} == {"missing", "undefined", "syntax", "markup"}


def test_a_missing_wording_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["preview", "--locale-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "this wording folder does not exist" in result.output


def test_from_a_checkout_the_page_points_at_the_checkouts_own_wording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the installed copy under site-packages, where an edit is lost on the next install."""
    checkout = tmp_path / "study-repo"
    wording = checkout / "prompts" / "en-GB"
    shutil.copytree(LOCALE, wording)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'our-study'\n", encoding="utf-8")
    (wording / "pause" / "not_paused.html.j2").write_text(
        "Edited in our own checkout.\n", encoding="utf-8"
    )
    monkeypatch.chdir(checkout)
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["preview", "--study", str(DEFAULT_STUDY_PATH), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "Edited in our own checkout." in page
    assert f"<dt>Wording folder</dt><dd><code>{wording}</code></dd>" in page
    assert str(wording) in result.output


def test_outside_a_checkout_the_page_uses_the_package_wording(tmp_path: Path) -> None:
    from bot.protocol import load_protocol
    from bot.tools.preview import default_locale_dir

    protocol = load_protocol(DEFAULT_STUDY_PATH)
    (tmp_path / "prompts" / "en-GB").mkdir(parents=True)  # a prompts folder, but no project
    assert default_locale_dir(protocol, tmp_path) == PROMPTS_DIR / "en-GB"


def test_scores_stay_on_the_scale_the_page_names(locale_copy: Path) -> None:
    """Flesch's formula gives short lines of one-syllable words more than 100."""
    (locale_copy / "pause" / "not_paused.html.j2").write_text("Yes.\nNo.\nGo.\n", encoding="utf-8")
    preview = build_preview(DEFAULT_STUDY_PATH, locale_copy, chart=False)
    scores = [s.reading.ease for s in preview.scored if s.reading is not None]
    assert max(scores) == 100.0
    assert min(scores) >= 0.0
    html = render_page(preview)
    assert "a reading ease score from 0 to 100 (Flesch)" in html
    shown = [int(n) for n in re.findall(r"Reading ease (-?\d+)", html)]
    assert shown and all(0 <= n <= 100 for n in shown)


def test_telegram_html_becomes_safe_page_html() -> None:
    html = (
        'Hi <b>Sam &amp; <i>Jo</i></b>. <a href="https://example.org/x?a=1&amp;b=2">link</a> '
        "<code>&lt;x&gt;</code> &nbsp; 😀 send /help"
    )
    page = telegram_to_page_html(html)
    assert str(page) == (
        "Hi <b>Sam &amp; <i>Jo</i></b>. "
        '<a href="https://example.org/x?a=1&amp;b=2" rel="noopener noreferrer">link</a> '
        '<code>&lt;x&gt;</code> &amp;nbsp; 😀 send <span class="command">/help</span>'
    )
    quoted = telegram_to_page_html("<blockquote>I said &quot;hi&quot;</blockquote>\n\nThanks")
    assert str(quoted) == "<blockquote>I said &#34;hi&#34;</blockquote>\n\nThanks"


def test_scores_are_the_benchmarks_scores() -> None:
    from bench.readability import score_all

    prompts = Prompts()
    bench = {s.template: s.ease for s in score_all("en-GB")}
    assert bench["pause/not_paused"] == score_html(prompts.render("pause/not_paused")).ease


def test_the_server_makes_the_page_again_on_each_request() -> None:
    calls: list[int] = []

    def page() -> tuple[int, str, str]:
        calls.append(1)
        return 200, "text/html", f"<p>page {len(calls)}</p>"

    server = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        for n in (1, 2):
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.read().decode() == f"<p>page {n}</p>"
                assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    finally:
        server.shutdown()
        server.server_close()
