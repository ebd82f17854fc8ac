"""Receipts: a note on local disk of each send Telegram accepted, written the moment it answers.

The sender records a send as ``sent`` in the database after Telegram's answer, in a commit that
can wait tens of milliseconds under load (batched with others, queued for SQLite's one write
lock). A crash in that gap used to leave the row ``sending``: after the restart it became
``unknown`` or, for a conversation step, was sent again, and the partner saw it twice. Nearly
every send caught by a kill was caught in that gap (``bench/soak.py``).

A receipt closes it: one short line appended to a file with a single ``write(2)`` as soon as the
answer arrives, before the sender awaits anything else. Once ``write`` returns, the kernel holds
the line, so it survives the process being killed. At start-up
:meth:`bot.transport.sender.OutboxSender.recover` settles the rows the receipts name as
``sent`` and empties the file. The rows they do not name are the ones Telegram may or may not
have accepted.

A receipt holds numbers only (outbox id, attempt, Telegram's message id), never words. A power
cut can lose lines not yet on disk, and another machine cannot see them; either way those rows
fall back to the rule without receipts (``unknown``, or sent again if a conversation waits).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bot.transport.callbacks import number

log = logging.getLogger(__name__)

#: Once the file has grown this big it is rewritten with only the receipts still needed.
ROLL_OVER_BYTES = 1 << 20


@dataclass(frozen=True)
class Receipt:
    """Telegram accepted attempt ``attempt`` of outbox row ``outbox_id``."""

    outbox_id: int
    attempt: int
    message_id: int | None


def receipts_path(data_dir: Path, database_url: str) -> Path:
    """The receipts file for one database, in the data directory.

    Named after the database (its URL without a password), so that a data directory shared by
    two databases never settles one's rows from the other's receipts.
    """
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return data_dir / f"outbox-receipts-{digest}.log"


class Receipts:
    """The append-only receipts file of one sender (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._size = 0
        self._compact_at = ROLL_OVER_BYTES
        #: Receipts written but whose sends the database does not have yet, by outbox id.
        self._waiting: dict[int, bytes] = {}

    def note(self, outbox_id: int, attempt: int, message_id: int | None) -> bool:
        """Write down, now and synchronously, that Telegram accepted this send; whether it was.

        Never raises: a receipt that cannot be written only loses its protection. Call
        :meth:`recorded` once the database has the send.
        """
        line = f"{outbox_id} {attempt} {'-' if message_id is None else message_id}\n".encode()
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            os.write(self._fd, line)
        except OSError as exc:
            log.warning("could not write a delivery receipt (%s)", type(exc).__name__)
            return False
        self._size += len(line)
        self._waiting[outbox_id] = line
        return True

    def recorded(self, outbox_id: int) -> None:
        """The database now has the send of ``outbox_id``: its receipt is no longer needed.

        Not called for a send the database could not record: its receipt stays (across
        compactions too) for the next start. Once the file has grown past
        :data:`ROLL_OVER_BYTES`, it is rewritten with only the receipts still waiting.
        """
        self._waiting.pop(outbox_id, None)
        if self._size >= self._compact_at:
            self._compact()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _compact(self) -> None:
        """Replace the file, in one rename, by one holding only the receipts still waiting.

        Until the rename the old file is whole, and after it the new one is: a kill at any
        moment leaves every waiting receipt on disk. Nothing is written in between, since
        writing a receipt never waits.
        """
        kept = b"".join(self._waiting.values())
        spare = self.path.with_name(self.path.name + ".new")
        try:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, kept)
            finally:
                os.close(fd)
            os.replace(spare, self.path)
            self.close()
            self._open()
        except OSError as exc:
            log.warning("could not compact the delivery receipts (%s)", type(exc).__name__)
            self._compact_at = self._size + ROLL_OVER_BYTES  # not again on every send
            return
        self._compact_at = ROLL_OVER_BYTES

    def read(self) -> list[Receipt]:
        """The receipts a previous run left (a torn last line is skipped)."""
        try:
            text = self.path.read_bytes().decode("ascii", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:  # unreadable: start as if there were none
            log.warning("could not read the delivery receipts (%s)", type(exc).__name__)
            return []
        receipts = []
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) != 3:
                continue
            outbox_id, attempt = number(parts[0], digits=20), number(parts[1], digits=20)
            message_id = number(parts[2], digits=20)
            if outbox_id is None or attempt is None or (message_id is None and parts[2] != "-"):
                continue
            receipts.append(Receipt(outbox_id, attempt, message_id))
        return receipts

    def clear(self) -> None:
        """Empty the file: every receipt in it has been applied."""
        try:
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
            elif self.path.exists():
                self.path.write_bytes(b"")
        except OSError as exc:
            log.warning("could not empty the delivery receipts (%s)", type(exc).__name__)
            return
        self._size = 0
        self._waiting.clear()

    def close(self) -> None:
        """Close the file (the receipts in it stay for the next start)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
