"""``python -m bot`` is the same as the ``companion`` command."""

from bot.tools.cli import main

main()
