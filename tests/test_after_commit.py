"""The inbox worker's after-commit calls: per chat in order, chats independent, errors kept
to themselves, and given up on when the bot stops."""

from __future__ import annotations

import asyncio

from bot.transport.inbox import InboxWorker


def worker() -> InboxWorker:
    return InboxWorker(None, None, on_committed=lambda: None)  # type: ignore[arg-type]


async def test_a_chats_calls_keep_their_order_across_batches_and_survive_an_error() -> None:
    done: list[str] = []

    def call(name: str, delay: float = 0.0, fail: bool = False):
        async def make() -> None:
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError("bug in a call")
            done.append(name)

        return make

    w = worker()
    w._call_after_commit([(1, call("a1", delay=0.05)), (1, call("boom", fail=True))])
    w._call_after_commit([(1, call("a2"))])  # a later batch, same chat: after the first
    await w.calls_done(timeout=2)
    assert done == ["a1", "a2"]


async def test_one_slow_chat_holds_back_no_other_chat() -> None:
    finished: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    started = loop.time()

    def call(name: str, delay: float):
        async def make() -> None:
            await asyncio.sleep(delay)
            finished[name] = loop.time() - started

        return make

    w = worker()
    w._call_after_commit([(1, call("slow", 1.0))])
    w._call_after_commit([(2, call("quick", 0.0))])  # the next batch, another chat
    await asyncio.sleep(0.2)
    assert "quick" in finished and finished["quick"] < 0.2
    await w.calls_done(timeout=2)
    assert finished["slow"] >= 1.0


async def test_stopping_gives_up_on_calls_that_hang() -> None:
    never = asyncio.Event()
    w = worker()
    w._call_after_commit([(1, never.wait)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await w.calls_done(timeout=0.1, cancel=True)
    assert loop.time() - started < 1.0
    assert w._calls == {}, "the cancelled chain is forgotten"
