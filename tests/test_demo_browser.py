"""``companion demo`` in real headless Chromium (Debian's package, driven by Playwright).

The test starts the command as a person would, opens the page and, only by clicking and
typing: enrols a new person through their invite link, answers a check-in (buttons, one of
them pressed from the keyboard, and typed text), moves the clock a week and sees the next
weekly check-in arrive, and asks for /journey and sees the picture (then a partner with a
few weeks of history does too, for the README's screenshot). A screenshot of each step
is saved under the test's folder (the path is printed); with ``UPDATE_SCREENSHOT=1`` the last
one is also copied to ``bot/sandbox/static/demo-screenshot.png`` for the README (off by
default, so that running the tests leaves the tree as it was). Along the way it checks what a
keyboard or screen-reader user relies on: named buttons, pictures with alt text, a live region
announcing new messages, a visible focus, and text contrast of at least 4.5:1.

Skipped, saying why, when Chromium or Playwright is missing, except in CI (``CI=true``),
where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.screenshots import CHROMIUM, CHROMIUM_ARGS  # one home for Chromium's arguments
from bot.protocol import load_protocol
from prompts import DEFAULT_STUDY_PATH, Prompts
from tests.conftest import free_port
from tests.test_demo import ROOT, STATIC, _wait_for_address

STEP_TIMEOUT_MS = 20_000
CLOCK_TIMEOUT_MS = 120_000

pytestmark = pytest.mark.slow

WORDS = Prompts().labels("demo.page")

# Every visible text node against its real background: WCAG AA (4.5:1, or 3:1 for large text).
CONTRAST_CHECK = """
() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(",").map((x) => parseFloat(x));
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const blend = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i -= 1) bg = blend(layers[i], bg);
    return bg;
  };
  const bad = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const node = walker.currentNode.parentElement;
    if (!text || !node || node.closest(".spoiler, [hidden], script, style")) continue;
    const box = node.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue; // visually hidden, for screen readers
    const style = getComputedStyle(node);
    if (style.visibility === "hidden" || style.display === "none") continue;
    const bg = background(node);
    const fg = blend(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) bad.push(`${ratio.toFixed(2)} ${text.slice(0, 40)}`);
  }
  return { checked, bad };
}
"""

NAMES_CHECK = """
() => {
  const unnamed = [];
  for (const b of document.querySelectorAll("button, a[href], summary, textarea")) {
    if (b.closest("[hidden]")) continue;
    const name = (b.getAttribute("aria-label") || b.textContent || "").trim()
      || (b.id && document.querySelector(`label[for="${b.id}"]`)?.textContent.trim());
    if (!name) unnamed.push(b.outerHTML.slice(0, 80));
  }
  const noAlt = [...document.querySelectorAll("img")].filter((i) => !i.alt.trim()).length;
  return { unnamed, noAlt };
}
"""


def _need_browser() -> None:
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"Debian's chromium is not at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Playwright for Python is not installed (pip install '.[dev]')")
    if problems:
        message = "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {message}")
        pytest.skip(message)


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[str]:
    """``companion demo --no-browser`` running in a subprocess; stopped with Ctrl-C after."""
    port = free_port()
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--no-browser", "--port", str(port)],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        yield _wait_for_address(process)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


class Steps:
    """The page, and a numbered screenshot of each step."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.shots: list[Path] = []

    def shot(self, name: str) -> Path:
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def bot_messages(self) -> Any:
        return self.page.locator("li.msg-bot")

    def count(self) -> int:
        return int(self.bot_messages().count())

    def wait_for_more(self, than: int, timeout: int = STEP_TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            "n => document.querySelectorAll('li.msg-bot').length > n", arg=than, timeout=timeout
        )

    def press(self, label: str, *, keyboard: bool = False) -> None:
        """Press a button under the bot's newest message and wait for its next message."""
        before = self.count()
        button = self.bot_messages().last.get_by_role("button", name=label, exact=True)
        if keyboard:
            button.focus()
            self.page.keyboard.press("Enter")
        else:
            button.click()
        self.wait_for_more(before)

    def type(self, text: str) -> None:
        """Type into the message box and send with Enter; wait for the bot's answer."""
        before = self.count()
        box = self.page.get_by_role("textbox", name=WORDS["message_label"])
        box.fill(text)
        box.press("Enter")
        self.wait_for_more(before)

    def wait_for_button(self, label: str) -> None:
        self.bot_messages().last.get_by_role("button", name=label, exact=True).wait_for(
            timeout=STEP_TIMEOUT_MS
        )

    def accessible(self) -> None:
        contrast = self.page.evaluate(CONTRAST_CHECK)
        assert contrast["checked"] > 20
        assert contrast["bad"] == [], f"text below 4.5:1 contrast: {contrast['bad']}"
        names = self.page.evaluate(NAMES_CHECK)
        assert names == {"unnamed": [], "noAlt": 0}


def test_the_demo_in_a_real_browser(demo_url: str, tmp_path: Path) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    prompts = Prompts()
    label = prompts.label
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots of each step: {shots}")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(demo_url)
            page.wait_for_selector("body[data-ready=true]", timeout=STEP_TIMEOUT_MS)
            steps = Steps(page, shots)
            assert page.title() == WORDS["title"]

            # the keyboard starts at the skip link, and focus is visible
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => [document.activeElement.className,"
                " getComputedStyle(document.activeElement).outlineStyle]"
            )
            assert focused == ["skip-link", "solid"]
            steps.accessible()
            steps.shot("start")

            # 1. a new person opens their invite link and goes through onboarding by clicking
            newcomer = page.locator(".persona", has_text=WORDS["kind_newcomer"]).first
            name = newcomer.locator(".persona-name").inner_text()
            newcomer.click()
            assert newcomer.get_attribute("aria-pressed") == "true"
            page.get_by_role("button", name=WORDS["open_invite"]).click()
            steps.wait_for_button(label("onboarding.start_button"))
            steps.shot("invite-opened")
            steps.press(label("onboarding.start_button"))
            steps.press(label("onboarding.yes_required"))
            steps.press(label("onboarding.yes_optional"))
            steps.press(label("onboarding.no_optional"))
            steps.press(label("onboarding.use_telegram_name", name=name))
            steps.press(load_protocol(DEFAULT_STUDY_PATH).groups[0].name)
            steps.press(label("slots.thu_evening"), keyboard=True)
            done = steps.bot_messages().last
            assert name in done.inner_text() and "Thursday evening" in done.inner_text()
            steps.shot("onboarded")

            # 2. a check-in: buttons (one pressed from the keyboard), then typed words
            steps.type("/checkin")
            steps.wait_for_button("4")
            steps.press("4")
            steps.press("5", keyboard=True)
            # the answered question is redrawn with a tick; the keyboard focus stays on it
            page.wait_for_function(
                "() => document.activeElement.textContent === '\u2713 5'",
                timeout=STEP_TIMEOUT_MS,
            )
            steps.press("3")
            steps.type("Meeting the team made me feel part of it.")
            end = steps.bot_messages().last.inner_text()
            assert "check-in done" in end
            live = page.locator("#announcer").inner_text()
            assert "check-in done" in live  # new messages were announced to screen readers
            steps.shot("checkin-answered")

            # 3. a week later, the next weekly check-in has arrived by itself
            intro = "Here is your weekly check-in"
            weekly = steps.bot_messages().filter(has_text=intro)
            before = weekly.count()
            page.get_by_role("button", name=WORDS["clock_week"]).click()
            moved = WORDS["clock_moved"].split("{", 1)[0]
            page.locator("#clock-status").filter(has_text=moved).wait_for(timeout=CLOCK_TIMEOUT_MS)
            page.wait_for_function(
                "([text, n]) => [...document.querySelectorAll('li.msg-bot')]"
                ".filter((m) => m.textContent.includes(text)).length > n",
                arg=[intro, before],
                timeout=STEP_TIMEOUT_MS,
            )
            newest = weekly.last
            newest.get_by_role("button", name="1", exact=True).wait_for()
            newest.scroll_into_view_if_needed()
            steps.shot("week-later")

            # 4. /journey: the chart arrives as a picture with its words
            before = steps.count()
            steps.type("/journey")
            picture = page.locator("li.msg-bot figure img").last
            picture.wait_for(timeout=STEP_TIMEOUT_MS)
            page.wait_for_function(
                "() => { const i = [...document.querySelectorAll('li.msg-bot figure img')].pop();"
                " return i && i.complete && i.naturalWidth > 100; }",
                timeout=STEP_TIMEOUT_MS,
            )
            assert picture.get_attribute("alt") == WORDS["picture_alt"]
            assert steps.count() > before
            steps.shot("journey")

            # a recorded voice note (Chromium's fake microphone) goes to the bot as a voice
            # message and can be played back in the chat
            before = steps.count()
            page.get_by_role("button", name=WORDS["voice_record"]).click()
            stop = page.get_by_role("button", name=WORDS["voice_stop"])
            stop.wait_for(timeout=STEP_TIMEOUT_MS)
            page.wait_for_timeout(1500)
            stop.click()
            page.locator("li.msg-you .voice audio").last.wait_for(timeout=STEP_TIMEOUT_MS)
            steps.wait_for_more(before)

            # 5. a partner with a few weeks of history: their chart has lines (the README's
            #    picture), and the unread badges and check-ins of the moved week are there
            partner = page.locator(".persona", has_text=WORDS["kind_partner"].split("{")[0])
            partner.first.click()
            steps.type("/journey")
            page.wait_for_function(
                "() => { const i = [...document.querySelectorAll('li.msg-bot figure img')].pop();"
                " return i && i.complete && i.naturalWidth > 100; }",
                timeout=STEP_TIMEOUT_MS,
            )
            page.wait_for_timeout(500)
            page.evaluate(
                "() => [...document.querySelectorAll('li.msg-bot figure')].pop()"
                ".scrollIntoView({block: 'start'})"
            )
            steps.accessible()
            final = steps.shot("partner-journey")
        finally:
            browser.close()
    assert errors == [], f"the page raised: {errors}"
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(final, STATIC / "demo-screenshot.png")
    for path in steps.shots:
        print(f"  {path}")
