"""Run the sandbox Telegram standalone: ``python -m bot.sandbox --port 8081``.

Prints the ``base_url`` (and the file and control URLs) and serves until interrupted.
``--enforce-limits`` turns on Telegram's flood limits; ``--spec`` checks every request against
the Bot API spec (``api.json``, found as :func:`bot.sandbox.spec.find_spec_path` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from bot.sandbox.limits import FloodLimits
from bot.sandbox.server import SandboxTelegram
from bot.sandbox.spec import BotApiSpec, expected_spec_location


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="123456:SANDBOX-token")
    parser.add_argument("--bot-username", default="companion_sandbox_bot")
    parser.add_argument("--enforce-limits", action="store_true", help="enforce flood limits")
    parser.add_argument("--spec", action="store_true", help="check requests against api.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the sandbox, print its URLs and wait until cancelled."""
    spec = None
    if args.spec:
        spec = BotApiSpec.load_default()
        if spec is None:
            print(f"api.json not found at {expected_spec_location()}", file=sys.stderr)
    sandbox = SandboxTelegram(
        token=args.token,
        bot_username=args.bot_username,
        host=args.host,
        port=args.port,
        spec=spec,
        limits=FloodLimits(enforce=args.enforce_limits),
    )
    async with sandbox:
        print(sandbox.base_url, flush=True)
        print(f"file url: {sandbox.base_file_url}", flush=True)
        print(f"control:  {sandbox.url}/control/state", flush=True)
        print(f"token:    {sandbox.token}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
