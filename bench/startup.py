"""Start-up time and idle memory: ``companion run`` against a bare python-telegram-bot bot.

Each bot runs as a process of its own against the same sandbox Telegram (also a process of its
own), started the way a person starts it: ours as ``python -m bot run`` (polling, no health
port, on an up-to-date database), the baseline as this file with ``--bare`` (a polling echo bot
that imports nothing but python-telegram-bot). For each:

* **start-up**: from the moment its process is started to its first ``getUpdates``, as the
  sandbox recorded the request's arrival, and the CPU time the process had used by then
  (steadier than the wall clock on a shared machine);
* **idle RSS**: its resident memory (``VmRSS`` in ``/proc/<pid>/status``) once it has polled
  quietly for ``--settle`` seconds; its peak (``VmHWM``) is shown too.

Rounds alternate the two bots; the figures are medians, shown as absolute values and as ratios
(ours / bare). Budget: DESIGN.md's idle RSS under 100 MB; issue 10 asks for under 90 MB.

A third bot shows the floor the chosen libraries set: the same bare echo bot, but it first
imports every third-party module that ``companion run`` loads (SQLAlchemy's asyncio ORM,
pydantic-settings, aiohttp, typer, Jinja2, APScheduler, ...; the list is read from a fresh
``companion run`` import, not written here). Ours minus this floor is what the bot's own code
and state cost.

Usage: python bench/startup.py [--rounds R] [--settle SECONDS]
                               [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the bare bot, run from this file, must import nothing but its library
    from bench._sandbox import RemoteSandbox

REPO = Path(__file__).resolve().parents[1]
BUDGET_MB = 100.0  # DESIGN.md: idle RSS
TARGET_MB = 90.0  # issue 10
START_TIMEOUT = 60.0  # seconds a bot may take to reach its first getUpdates


PRELOAD_ENV = "BENCH_PRELOAD"  # modules the bare bot imports first (space-separated)


def run_bare_bot() -> None:
    """The baseline: a bare python-telegram-bot echo bot, long polling until SIGTERM.

    With ``BENCH_PRELOAD`` set, it imports those modules first (and uses none of them).
    """
    import importlib

    for name in os.environ.get(PRELOAD_ENV, "").split():
        importlib.import_module(name)

    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None and update.message.text is not None:
            await update.message.reply_text(update.message.text)

    app = (
        ApplicationBuilder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling()


@dataclass
class Sample:
    """One start of one bot."""

    startup: float  # seconds from process start to its first getUpdates
    cpu: float  # CPU seconds the process had used when its first getUpdates was seen
    idle_mb: float  # VmRSS after settling
    peak_mb: float  # VmHWM


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_get_updates(
    sb: RemoteSandbox, since: int, process: asyncio.subprocess.Process
) -> float:
    """The arrival time (unix seconds) of the first getUpdates recorded after index ``since``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while loop.time() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with status {process.returncode}")
        response = await sb.client.get(
            f"{sb.url}/control/requests",
            params={"method": "getUpdates", "since": since},
        )
        response.raise_for_status()
        rows = response.json()
        if rows:
            return float(rows[0]["time"])
        await asyncio.sleep(0.02)  # this process's polling costs the measured one nothing
    raise TimeoutError(f"no getUpdates within {START_TIMEOUT:.0f} s")


async def measure_one(
    sb: RemoteSandbox, command: list[str], env: dict[str, str], workdir: Path, settle: float
) -> Sample:
    """Start ``command``, time it to its first getUpdates, let it settle, read its memory."""
    since = int((await sb.state())["requests"])
    log = (workdir / "bot.log").open("ab")
    started = time.time()
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, env=env, stdout=log, stderr=log
    )
    try:
        first = await first_get_updates(sb, since, process)
        cpu = cpu_seconds(process.pid)
        await asyncio.sleep(settle)
        idle, peak = memory_mb(process.pid)
    except BaseException:
        log.flush()
        tail = (workdir / "bot.log").read_text(errors="replace")[-2000:]
        print(f"--- {' '.join(command)} failed; its log ends:\n{tail}", file=sys.stderr)
        raise
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()
    return Sample(startup=first - started, cpu=cpu, idle_mb=idle, peak_mb=peak)


def bot_env(sb: RemoteSandbox, database_url: str) -> dict[str, str]:
    """The environment of a measured bot: the sandbox, the database, nothing from ``.env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "COMPANION_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=sb.token,
        TELEGRAM_API_BASE_URL=sb.base_url,
        DATABASE_URL=database_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


async def migrate(env: dict[str, str], workdir: Path) -> None:
    """Bring the database up to date first: start-up is measured on a ready database."""
    command = [sys.executable, "-m", "bot", "db", "upgrade"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError("companion db upgrade failed")


OURS = ("bot", "handlers", "storage", "prompts", "bench")


def library_modules(env: dict[str, str]) -> list[str]:
    """The third-party modules ``companion run`` loads, in the order it loads them."""
    code = (
        "import sys, bot.tools.cli, bot.runtime; "
        "print(*(n for n, m in sys.modules.items() if m is not None))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in OURS
        and not name.startswith("_")
    ]


def report(name: str, samples: list[Sample]) -> Sample:
    """Print one bot's medians and return them."""
    median = Sample(
        startup=statistics.median(s.startup for s in samples),
        cpu=statistics.median(s.cpu for s in samples),
        idle_mb=statistics.median(s.idle_mb for s in samples),
        peak_mb=statistics.median(s.peak_mb for s in samples),
    )
    print(
        f"{name + ':':15} start-up {median.startup:5.2f} s ({median.cpu:4.2f} s CPU)  "
        f"idle RSS {median.idle_mb:6.1f} MB  peak {median.peak_mb:6.1f} MB"
    )
    each = ", ".join(f"{s.startup:.2f} s ({s.cpu:.2f} CPU)/{s.idle_mb:.1f} MB" for s in samples)
    print(f"{'':15} each round: {each}")
    return median


async def main(rounds: int, settle: float, database_url: str | None) -> int:
    """Alternate the bare bot and ours ``rounds`` times; print the figures."""
    from bench._sandbox import remote_sandbox

    bare: list[Sample] = []
    floor: list[Sample] = []
    ours: list[Sample] = []
    async with remote_sandbox() as sb:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            workdir = Path(tmp)
            url = database_url or f"sqlite+aiosqlite:///{workdir / 'companion.db'}"
            env = bot_env(sb, url)
            await migrate(env, workdir)
            libraries = library_modules(env)
            floor_env = {**env, PRELOAD_ENV: " ".join(libraries)}
            bare_bot = [sys.executable, __file__, "--bare"]
            for _ in range(rounds):
                bare.append(await measure_one(sb, bare_bot, env, workdir, settle))
                floor.append(await measure_one(sb, bare_bot, floor_env, workdir, settle))
                ours.append(
                    await measure_one(
                        sb, [sys.executable, "-m", "bot", "run"], env, workdir, settle
                    )
                )
    print(f"{rounds} rounds, medians; settled {settle:.0f} s after the first getUpdates")
    print(f"database: {'PostgreSQL' if database_url else 'SQLite'}")
    base = report("bare PTB bot", bare)
    least = report("+ libraries", floor)
    our = report("companion run", ours)
    print(
        f"the libraries alone ({len(libraries)} modules that companion run loads, imported by "
        f"the bare bot): {least.idle_mb - base.idle_mb:+.1f} MB; the bot's own code and state: "
        f"{our.idle_mb - least.idle_mb:+.1f} MB"
    )
    print(
        f"start-up ratio (ours / bare): {our.startup / base.startup:.2f} "
        f"(CPU {our.cpu / base.cpu:.2f})"
    )
    print(f"idle RSS ratio (ours / bare): {our.idle_mb / base.idle_mb:.2f}")
    our_idle = our.idle_mb
    print(
        f"idle RSS {our_idle:.1f} MB: budget < {BUDGET_MB:.0f} MB (DESIGN.md) "
        f"{'met' if our_idle < BUDGET_MB else 'MISSED'}, target < {TARGET_MB:.0f} MB "
        f"(issue 10) {'met' if our_idle < TARGET_MB else 'missed'}"
    )
    return 0 if our_idle < BUDGET_MB else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before reading")
    parser.add_argument("--database-url", help="a PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    if args.bare:
        run_bare_bot()
        raise SystemExit(0)
    sys.path.insert(0, str(REPO))
    raise SystemExit(asyncio.run(main(args.rounds, args.settle, args.database_url)))
