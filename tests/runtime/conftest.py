from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.runtime.fakes import FakeKube, HeldArm, Stack, start_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    started = await start_stack(FakeKube(), HeldArm())
    try:
        yield started
    finally:
        started.arm.release.set()
        await started.close()
