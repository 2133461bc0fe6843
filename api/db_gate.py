"""How one API process shares its database connections and threads, from one setting.

The lock-up this prevents: a request that holds a pooled connection and then
waits for a thread, while every thread waits for a connection. Each request
session takes a *slot* in the event loop before it may touch the database, and
there are exactly as many slots as pooled connections, so a checkout never waits
and no thread ever blocks on the pool. Work outside requests (enqueueing after a
commit, live event polls, the default team's first lookup) has the pool's
overflow connections and a limiter of the same size. Threads outnumber both
together, so a request holding a connection finds a thread without waiting for
another request to give one back. Health probes have a connection and a limiter
of their own: they never queue behind work.

    FLATLAB_DB_POOL_SIZE = N  →  N request slots, N pooled connections,
                                 R = max(4, N // 4) for work outside requests,
                                 N + R + 8 threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request

T = TypeVar("T")
HEADROOM_THREADS = 8  # for work that holds nothing: serialising, templates, files


@dataclass(frozen=True)
class GateSizes:
    """Sizes that follow from `db_pool_size` (`N`): see the module docstring."""

    slots: int
    reserve: int
    threads: int

    @classmethod
    def from_pool(cls, pool_size: int) -> GateSizes:
        reserve = max(4, pool_size // 4)
        return cls(slots=pool_size, reserve=reserve, threads=pool_size + reserve + HEADROOM_THREADS)

    def engine_kwargs(self) -> dict[str, Any]:
        """`create_engine` pool arguments: one pooled connection a slot, overflow the reserve."""
        return {"pool_size": self.slots, "max_overflow": self.reserve, "pool_timeout": 30}


@dataclass
class Gate:
    """The limiters of one process; made in the running event loop on first use."""

    sizes: GateSizes
    _limiters: dict[str, anyio.CapacityLimiter] = field(default_factory=dict)

    def limiter(self, name: str) -> anyio.CapacityLimiter:
        found = self._limiters.get(name)
        if found is None:
            tokens = {"slots": self.sizes.slots, "reserve": self.sizes.reserve, "probe": 2}
            found = self._limiters[name] = anyio.CapacityLimiter(tokens[name])
            if name == "slots":  # the first request: size this loop's thread pool too
                default = anyio.to_thread.current_default_thread_limiter()
                default.total_tokens = max(default.total_tokens, self.sizes.threads)
        return found

    @property
    def slots(self) -> anyio.CapacityLimiter:
        """One per request session, taken before it may check out a connection."""
        return self.limiter("slots")

    @property
    def reserve(self) -> anyio.CapacityLimiter:
        """Threads for database work outside requests (the pool's overflow)."""
        return self.limiter("reserve")

    @property
    def probe(self) -> anyio.CapacityLimiter:
        """Threads of the health probes, which use their own engine."""
        return self.limiter("probe")


def gate(app: FastAPI) -> Gate:
    found: Gate = app.state.gate
    return found


async def outside_request(request: Request, func: Callable[..., T], *args: Any) -> T:
    """Run database work that is not the request's own session (its own connection)."""
    return await anyio.to_thread.run_sync(func, *args, limiter=gate(request.app).reserve)


def run_outside(app: FastAPI, func: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """A background task running `func(*args)` in a reserve thread (after the response)."""

    async def task() -> None:
        await anyio.to_thread.run_sync(func, *args, limiter=gate(app).reserve)

    return task
