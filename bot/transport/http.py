"""python-telegram-bot requests over aiohttp, for the bots that send the most.

python-telegram-bot's default transport (httpx on httpcore) spends about 1.5 ms of CPU per
Bot API call on this kind of machine, most of it in connection-pool bookkeeping that grows with
the pool; aiohttp makes the same call for about a tenth of that. The outbox sender makes one call
per message, so on a busy bot this was the largest single cost of a reply (bench/inbound.py).

Failures are raised the way python-telegram-bot raises them (``TimedOut``, ``NetworkError``),
with the aiohttp exception as ``__cause__``, so that
:mod:`bot.transport.delivery_errors` can still tell a
request that never left this host (no connection, or none within the connect/pool timeout) from
one that may have reached Telegram (a read timeout, a dropped connection): only the first is
ever resent.

aiohttp has no write timeout of its own; a request as a whole is bounded by the sum of its
timeouts, and running into that bound counts as "may have been delivered".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:  # for annotations only: nothing private is used at run time
    from telegram._utils.types import ODVInput

#: python-telegram-bot's "not given" marker class, taken from its public ``DEFAULT_NONE``.
_DefaultValue = type(BaseRequest.DEFAULT_NONE)


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """A timeout the caller gave, else ``default``."""
    return default if isinstance(value, _DefaultValue) else cast("float | None", value)


class AiohttpRequest(BaseRequest):
    """A :class:`~telegram.request.BaseRequest` on one :class:`aiohttp.ClientSession`.

    The timeouts mean what they mean for python-telegram-bot's ``HTTPXRequest`` (seconds, None
    for no limit), except that there is no separate write timeout (see the module docstring).
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 1,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(  # noqa: PLR0917 - the signature is python-telegram-bot's
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See :meth:`telegram.request.BaseRequest.do_request`."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        parts = (read, write, connect, pool)
        timeout = aiohttp.ClientTimeout(
            # Waiting for a free connection and connecting: the request has not left.
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
            total=None if None in parts else sum(p for p in parts if p is not None),
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            data = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for name, value in data.items():
                    form.add_field(name, value)
                for name, (filename, content, mime_type) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime_type)
                data = form
        try:
            async with session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
