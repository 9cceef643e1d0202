"""The async lifecycle every publisher shares: ``async with`` starts it, flushes what is
queued on a clean exit, and always closes it."""
from __future__ import annotations

from typing import Self

__all__ = ["FlushingLifecycle"]


class FlushingLifecycle:
    """Mix-in for publishers with ``start``, ``flush`` and ``close`` coroutines."""

    async def start(self) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _started(self) -> bool:
        """True once :meth:`start` has connected (there is something to flush)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None and self._started():
                await self.flush()
        finally:
            await self.close()
