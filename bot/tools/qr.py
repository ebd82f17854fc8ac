"""QR codes of invite links, as PNG files for paper handouts at meetings."""

from __future__ import annotations

from pathlib import Path

from bot.connector.invites import qr_png_bytes


def write_qr_png(link: str, path: Path) -> Path:
    """Write ``link`` as a QR code PNG at ``path`` (medium error correction); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(qr_png_bytes(link))
    return path


def qr_filename(role: str, group_key: str | None, code_hash: str) -> str:
    """A file name that says who the invite is for and never clashes with earlier handouts.

    It carries a short piece of the code's hash (not of the code), so the name reveals nothing.
    """
    return f"invite-{role}-{group_key or 'any'}-{code_hash[:10]}.png"
