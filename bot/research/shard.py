"""A helper process that writes one part of a big export's ``responses.csv``.

An export splits a large ``responses.csv`` by check-in id into parts (see
:mod:`bot.research.parts`): ``companion export`` writes the first itself and hands each other
to a process running ``python -m bot.research.shard`` (in a running bot every part goes to one),
so that on a machine with two or more cores the parts are read, decrypted and formatted side
by side, where one Python process can use only one core. Each part is plain CSV without a
header, in the export's order, readable by its owner only (it holds partners' words), and the
export appends the parts in turn, so the file is the same as one process would have written.

The process is lean (the database driver, the text cipher and :mod:`bot.research.rows`): its
job arrives on standard input as JSON (the SQL the export compiled for the part, the row
context, the key and where to write), so the key never appears in a process listing. It prints
one JSON line when done: the rows written and the voice notes they name (which can run to
megabytes: the export reads it as it comes). Any failure exits non-zero with one line on
standard error, and the export fails with it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.research.pseudonyms import Pseudonymiser
from bot.research.reading import postgres_batches, sqlite_batches
from bot.research.rows import RowContext, answer_csv
from storage.crypto import TextCipher


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def write_part(job: dict[str, Any]) -> dict[str, Any]:
    """Write the part ``job`` describes; return what :func:`main` prints."""
    cipher = TextCipher(job["secret"])
    ctx = RowContext.from_plain(job["context"], cipher, Pseudonymiser(job["secret"]))
    written = 0
    history = job["history"]
    with open(job["out"], "w", encoding="utf-8", newline="", opener=_private) as out:

        def take(batch: Sequence[Any]) -> None:
            nonlocal written
            out.write(answer_csv(ctx, batch, history=history))
            written += len(batch)

        if job["driver"] == "sqlite":
            for batch in sqlite_batches(job["target"], job["sql"]):
                take(batch)
        else:
            import asyncio

            async def read_all() -> None:
                async for batch in postgres_batches(job["target"], job["sql"]):
                    take(batch)

            asyncio.run(read_all())
    return {"rows": written, "voice_files": ctx.voice_files, "peak_mb": _peak_mb()}


def _peak_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``), where Linux tells it."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def main() -> int:
    """Read the job from standard input, write the part, print the outcome."""
    try:
        result = write_part(json.load(sys.stdin))
    except Exception as exc:  # one line for the export's error, whatever went wrong
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
