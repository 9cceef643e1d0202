"""The async lifecycles the transports share: ``async with`` starts a source or publisher and
always closes it; a publisher also flushes what is queued on a clean exit."""
from __future__ import annotations

from typing import Self

__all__ = ["FlushingLifecycle", "Lifecycle"]


class Lifecycle:
    """Mix-in for anything with ``start`` and ``close`` coroutines."""

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.close()


class FlushingLifecycle(Lifecycle):
    """A publisher: on a clean exit from ``async with``, :meth:`flush` before closing."""

    async def flush(self) -> None:
        raise NotImplementedError

    def _started(self) -> bool:
        """True once :meth:`start` has connected (there is something to flush)."""
        raise NotImplementedError

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None and self._started():
                await self.flush()
        finally:
            await self.close()
