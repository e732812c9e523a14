"""Group commit: concurrent callers share one flush, each getting its own result or the error."""

from __future__ import annotations

import asyncio

import pytest
from mport_shared.batching import Batcher


async def test_callers_within_the_window_share_one_flush_and_get_their_own_results() -> None:
    flushes: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        flushes.append(items)
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(double, window_s=0.01, max_items=100)
    assert await asyncio.gather(*(batcher(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert flushes == [[0, 1, 2, 3, 4]]


async def test_a_full_batch_goes_at_once_and_the_rest_follows() -> None:
    flushes: list[list[int]] = []

    async def echo(items: list[int]) -> list[int]:
        flushes.append(items)
        return items

    batcher: Batcher[int, int] = Batcher(echo, window_s=10, max_items=3)
    results = await asyncio.wait_for(asyncio.gather(*(batcher(n) for n in range(3))), 1)
    assert results == [0, 1, 2]
    assert flushes == [[0, 1, 2]]


async def test_a_failed_flush_fails_every_caller_of_that_batch_only() -> None:
    async def fail_on_seven(items: list[int]) -> list[int]:
        if 7 in items:
            raise ValueError("bad batch")
        return items

    batcher: Batcher[int, int] = Batcher(fail_on_seven, window_s=0.01)
    first = await asyncio.gather(batcher(1), batcher(7), return_exceptions=True)
    assert [type(r) for r in first] == [ValueError, ValueError]
    assert await batcher(2) == 2


async def test_a_flush_that_loses_results_is_an_error_not_a_wrong_answer() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher: Batcher[int, int] = Batcher(short, window_s=0.01)
    with pytest.raises(RuntimeError, match="gave 1 results"):
        await asyncio.gather(batcher(1), batcher(2))
