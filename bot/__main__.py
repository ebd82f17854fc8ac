"""``python -m bot`` is the same as the ``companion`` command."""

from bot.cli import main

main()
