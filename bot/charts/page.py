"""A one-page document of plain text (an A4 PDF), for a partner to keep.

Drawn with matplotlib like the charts (imported here, off the event loop); long lines wrap,
and what does not fit on the page is left off with an ellipsis line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

A4_INCHES = (8.27, 11.69)
WRAP = 78
LINES = 52


def draw_page(title: str, lines: list[str], path: Path) -> Path:
    """Write ``title`` and ``lines`` as a one-page PDF at ``path`` (folders made)."""
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure

    wrapped: list[str] = []
    for line in lines:
        wrapped.extend(textwrap.wrap(line, WRAP) or [""])
    if len(wrapped) > LINES:
        wrapped = [*wrapped[: LINES - 1], "…"]
    figure = Figure(figsize=A4_INCHES)
    FigureCanvasPdf(figure)
    figure.text(0.08, 0.94, title, fontsize=20, fontweight="bold", va="top")
    figure.text(
        0.08, 0.89, "\n".join(wrapped), fontsize=11, va="top", linespacing=1.5, family="sans-serif"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="pdf")
    return path
