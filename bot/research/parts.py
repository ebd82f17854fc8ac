"""A big ``responses.csv`` written in parts, the export's own and its helpers', one core each.

One Python process formats rows on one core. For an export of more than
:data:`PART_MIN_ANSWERS` answers on a machine with several cores, the answers are split by
check-in id into as many parts as there are cores (at most :data:`MAX_PARTS`). The export
writes the first part itself, after the other tables; each other part is read, decrypted and
formatted by a helper, ``python -m bot.research.shard``, started at once. The helpers' parts are
then appended in order, each as its helper writes it, so ``responses.csv`` holds the same rows
in the same order as one process would have written. The export's own part is the smaller
(:data:`OWN_SHARE`) because it writes the other tables and compresses every part too, and
there is one helper fewer than parts because every process costs memory. In a running bot
(``/export``) every part goes to a helper instead, so that the bot's own process keeps
answering partners. Each part reads the database on its own connection: an answer given while
the export runs may be in it or not, as with any export taken from a study that is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Dialect

import bot
from bot.research.reading import Target, plain_sql
from bot.research.rows import RowContext
from storage.queries import research as q

PART_MIN_ANSWERS = 100_000  # below this, starting helpers costs more than it saves
MAX_PARTS = 4
#: The export's own part, as a share of a helper's, by database driver: it writes the other
#: tables and compresses every part into the zip besides. The quickest on two cores, timing
#: `companion export` of a million answers: of 0.3 to 0.6 on PostgreSQL, and of 0.2 to 1.2 on
#: SQLite (where each process also runs its part's query itself).
OWN_SHARE = {"postgresql": 0.4, "sqlite": 0.8}
HELPER_MODULE = "bot.research.shard"


class PartFailedError(RuntimeError):
    """A helper process did not write its part; the message is its one line."""


def usable_cores() -> int:
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(span: q.AnswerSpan, *, cores: int, own_share: float = 1.0) -> list[tuple[int, int]]:
    """Check-in id ranges ``[first, end)``, the export's own part first and the helpers' after.

    ``own_share`` is the first part's size as a share of each other's (1.0: all the same).
    Empty when one process is best: a small export, one core, or a single check-in.
    """
    first, end = span.first_checkin, span.last_checkin + 1
    count = min(cores, MAX_PARTS, end - first)
    if span.count <= PART_MIN_ANSWERS or count < 2:
        return []
    shares = [own_share] + [1.0] * (count - 1)
    whole = sum(shares)
    bounds, done = [first], 0.0
    for share in shares[:-1]:
        done += share
        bounds.append(first + round((end - first) * done / whole))
    bounds.append(end)
    ranges = [(low, high) for low, high in pairwise(bounds) if low < high]
    return ranges if len(ranges) >= 2 else []


Ended = asyncio.Future[tuple[bytes, bytes]]  # a helper's output and errors, once it has ended


@dataclass
class Part:
    """One helper process and the file it writes (in a folder only its owner can read)."""

    process: asyncio.subprocess.Process
    path: Path
    stderr_hint: str = ""  # why it could not be given its job, if that failed
    _ended: Ended | None = field(default=None, init=False, repr=False)

    def ended(self) -> Ended:
        """The helper's output and errors, done when it has ended.

        Its pipes are read all the while: a helper whose last line (its answer, with every
        voice note it names) is bigger than a pipe holds would otherwise wait for ever to
        write it, and never end.
        """
        if self._ended is None:
            self._ended = asyncio.ensure_future(self.process.communicate())
        return self._ended


def _helper_env() -> dict[str, str]:
    # The helper imports this package; make sure it finds the same copy as this process.
    root = str(Path(bot.__file__).resolve().parent.parent)
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


async def start(
    *,
    ranges: list[tuple[int, int]],
    window: q.Window,
    dialect: Dialect,
    target: Target,
    ctx: RowContext,
    secret: str,
    folder: Path,
    prefix: str,
) -> list[Part]:
    """Start one helper per range; each writes ``partN.csv`` in a private folder in ``folder``.

    ``ranges`` are the helpers' (the plan's ranges but the export's own first one).
    """
    parts: list[Part] = []
    plain = ctx.to_plain()
    private = Path(tempfile.mkdtemp(prefix=f"{prefix}.parts-", dir=folder))  # mode 0700
    try:
        for number, checkins in enumerate(ranges):
            statement = q.answers(window, in_force=True, checkins=checkins)
            sql = plain_sql(statement, dialect)
            path = private / f"part{number}.csv"
            job = {
                "driver": target[0],
                "target": target[1],
                "sql": sql,
                "context": plain,
                "secret": secret,
                "history": False,
                "out": str(path),
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                HELPER_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_helper_env(),
            )
            part = Part(process, path)
            parts.append(part)
            if process.stdin is None:
                raise RuntimeError("the helper has no standard input")
            try:
                process.stdin.write(json.dumps(job).encode("utf-8"))
                await process.stdin.drain()
                process.stdin.close()
            except OSError as exc:  # it stopped before reading its job: finish() says why
                part.stderr_hint = f"{type(exc).__name__}: {exc}"
    except BaseException:
        await stop(parts)
        shutil.rmtree(private, ignore_errors=True)
        raise
    return parts


@dataclass(frozen=True)
class Written:
    """What the helpers wrote: rows, the voice notes they name, each helper's peak memory."""

    rows: int
    voice_files: list[tuple[str, str]]
    peaks_mb: list[float]


async def finish(part: Part) -> Written:
    """Wait for one helper and read what it wrote."""
    out, err = await part.ended()
    lines = err.decode("utf-8", "replace").strip().splitlines()
    if part.process.returncode != 0 or part.stderr_hint:
        status = part.stderr_hint or f"exit status {part.process.returncode}"
        raise PartFailedError(lines[-1] if lines else status)
    try:
        result: dict[str, Any] = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise PartFailedError(f"it answered {out[-200:]!r}") from exc
    return Written(
        int(result["rows"]),
        [(stored, name) for stored, name in result["voice_files"]],
        [] if result.get("peak_mb") is None else [float(result["peak_mb"])],
    )


async def stop(parts: list[Part]) -> None:
    """Stop any helper still running and remove every part file and their folder."""
    for part in parts:
        if part.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                part.process.kill()
        with contextlib.suppress(OSError):
            await part.ended()  # its pipes read to the end: waiting alone could wait for ever
        part.path.unlink(missing_ok=True)
    for folder in {part.path.parent for part in parts}:
        shutil.rmtree(folder, ignore_errors=True)


FOLLOW_SECONDS = 0.05  # how often a part being written is looked at again


async def _follow(part: Part, write: Callable[[bytes], object]) -> None:
    """Pass the part's file to ``write`` as its helper writes it, until the helper has ended.

    The helper closes its file before it ends, so once it has ended what is read is whole.
    """
    source: BinaryIO | None = None
    ending = part.ended()
    try:
        while True:
            ended = ending.done()
            if source is None:
                with contextlib.suppress(FileNotFoundError):  # not made yet, or never
                    source = part.path.open("rb")
            if source is not None:
                while chunk := source.read(1 << 20):
                    write(chunk)
            if ended:
                return
            await asyncio.wait({ending}, timeout=FOLLOW_SECONDS)
    finally:
        if source is not None:
            source.close()


async def append_all(
    parts: list[Part],
    write: Callable[[bytes], object],
    progress: Callable[[int], None],
    *,
    done: int = 0,
) -> Written:
    """Append each part's file to ``write`` in order; return what they held together.

    Each part is appended as its helper writes it, not once it is done: compressing it into
    the zip then keeps pace with the helper instead of following it. ``progress`` is told the
    rows written so far, counting from ``done`` (the export's own), as each part ends.
    """
    rows = 0
    voice_files: list[tuple[str, str]] = []
    peaks_mb: list[float] = []
    for part in parts:
        await _follow(part, write)
        written = await finish(part)
        part.path.unlink(missing_ok=True)
        rows += written.rows
        voice_files += written.voice_files
        peaks_mb += written.peaks_mb
        progress(done + rows)
    return Written(rows, voice_files, peaks_mb)
