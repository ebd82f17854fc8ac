"""The README's screenshot of ``/stats`` in the demo page, made again the same way each time.

Starts ``companion demo --no-browser --more-partners 15`` (the three partners the page plays,
and fifteen more made-up ones with a few weeks of history, so that every group has at least
``min_group_size`` people and the figures show), opens the page in Debian's Chromium through
Playwright, plays the connector typing ``/stats`` and pressing "All", waits for the charts,
and saves the page with the check-ins chart in view.

Usage: python bench/screenshots.py [--out bot/sandbox/static/stats-screenshot.png]

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and Playwright (the dev extra);
PyPI's Playwright cannot download its own browsers here (DESIGN.md, "Known traps").
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prompts import Prompts

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # a fake microphone that needs no permission prompt (the browser test records a voice note)
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
MORE_PARTNERS = 15
FIGURE = 0  # the chart brought into view: check-ins answered each week
STEP_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 1000}
DEFAULT_OUT = ROOT / "bot" / "sandbox" / "static" / "stats-screenshot.png"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _address(process: subprocess.Popen[str], within: float = 120.0) -> str:
    """The page's address, once the demo prints it (read on a thread: never hangs)."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout
    threading.Thread(
        target=lambda: [lines.put(line) for line in iter(stream.readline, "")], daemon=True
    ).start()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        try:
            found = re.search(r"http://127\.0\.0\.1:\d+/", lines.get(timeout=0.2))
        except queue.Empty:
            continue
        if found:
            return found.group(0)
    raise SystemExit("the demo did not print its address")


def shoot(url: str, out: Path) -> None:
    """Play the connector asking for /stats "All" and save the page with a chart in view."""
    from playwright.sync_api import sync_playwright

    words = Prompts().labels("demo.page")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="en-GB")
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]", timeout=STEP_TIMEOUT_MS)
            page.locator(".persona", has_text=words["kind_connector"]).first.click()
            box = page.get_by_role("textbox", name=words["message_label"])
            box.fill("/stats")
            box.press("Enter")
            all_label = Prompts().label("stats.periods.all")
            button = page.locator("li.msg-bot").last.get_by_role("button", name=all_label)
            button.wait_for(timeout=STEP_TIMEOUT_MS)
            button.click()
            # every chart arrived and loaded, then the words after them
            page.wait_for_function(
                "() => { const imgs = [...document.querySelectorAll('li.msg-bot figure img')];"
                " return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth);"
                " }",
                timeout=STEP_TIMEOUT_MS,
            )
            page.wait_for_timeout(1500)
            # the chart at the top of the chat; the page itself stays scrolled to its top
            page.evaluate(
                "(n) => { document.querySelectorAll('li.msg-bot figure')[n]"
                ".scrollIntoView({block: 'start'}); window.scrollTo(0, 0); }",
                FIGURE,
            )
            page.wait_for_timeout(500)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"Debian's chromium is not at {CHROMIUM} (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="screenshots-") as work:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bot", "demo", "--no-browser"),
                *("--port", str(_free_port()), "--more-partners", str(MORE_PARTNERS)),
            ],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            shoot(_address(process), args.out)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
