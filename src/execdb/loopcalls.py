"""PostgreSQL: the service calls run on the event loop, each in a greenlet of its own.

The service layer is synchronous (one code path for both backends). On SQLite a call runs
right on the event loop. On PostgreSQL it used to go to a pool of database threads, so that
a call waiting for the server held only its thread; but every call was then a hand-over to
a thread and back, and every wait of psycopg gave up the GIL and had to win it back from the
loop: about 20 context switches a request (docs/benchmarks.md). Here a call runs on the loop's
own thread, in a greenlet, on a connection of its own, and when psycopg would block on the
server's socket (`LoopConnection.wait`), the greenlet hands the wait to the loop and the loop
serves other requests until the answer is there. So a slow statement still suspends only its
own call, as on the threads, and nothing else changes hands.

What the greenlet runs is ordinary synchronous code: the same statements, in the same
transactions, with the same errors. Python work inside a call (a classification, building an
answer) does hold the loop, exactly as on SQLite; reads that can take long keep their
threads (`Database.run_read`).

A call keeps its connection for its whole run; `LoopCalls` holds `size` of them, made on
demand (on a thread, since connecting blocks), and a call that finds them all busy waits for
one, first come first served. A call whose request is cancelled runs to its end all the
same, as it did on a thread: stopping it halfway would leave the connection in the middle of
the protocol.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

import greenlet
import psycopg
from psycopg import waiting
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

P = ParamSpec("P")
T = TypeVar("T")


class _Call(greenlet.greenlet):
    """The greenlet of one service call, and the connection it runs on."""

    connection: Connection


def call_connection() -> Connection | None:
    """The connection of the service call running here, if this is one (see the module)."""
    current = greenlet.getcurrent()
    return current.connection if isinstance(current, _Call) else None


def _wait_on_loop(awaitable: Awaitable[T]) -> T:
    """Inside a call: suspend it until `awaitable`, which the loop awaits, is done."""
    current = greenlet.getcurrent()
    assert isinstance(current, _Call)
    assert current.parent is not None
    return cast(T, current.parent.switch(awaitable))


async def _in_greenlet(connection: Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in a new call greenlet, awaiting for it whatever it waits on."""
    driver = greenlet.getcurrent()
    call = _Call(fn, driver)
    call.connection = connection
    call.gr_context = driver.gr_context  # the request's context (logging, metrics)
    result = call.switch(*args)
    while not call.dead:
        try:
            value = await result
        except BaseException:
            result = call.throw(*sys.exc_info())
        else:
            result = call.switch(value)
    return cast(T, result)


class LoopConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits, inside a service call, are the event loop's."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if not isinstance(greenlet.getcurrent(), _Call):
            return super().wait(gen, interval, timeout)
        return _wait_on_loop(
            waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout)
        )

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> LoopConnection:
        # Connecting waits in psycopg's own loop: inside a call (a reconnection after the
        # server was restarted, say), on a thread instead of the event loop's.
        connect = super().connect
        if isinstance(greenlet.getcurrent(), _Call):
            return _wait_on_loop(asyncio.to_thread(connect, *args, **kwargs))
        return connect(*args, **kwargs)


def use_loop_connections(engine: Engine) -> None:
    """Make the engine's new psycopg connections `LoopConnection`s."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> LoopConnection:
        return LoopConnection.connect(*cargs, **cparams)


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Connection | None]"]


class LoopCalls:
    """Service calls on the event loop, on up to `size` connections of the engine's."""

    def __init__(self, engine: Engine, size: int) -> None:
        self.engine = engine
        self.size = size
        self._lock = threading.Lock()  # the connections may be shared by several loops
        self._idle: list[Connection] = []
        self._all: list[Connection] = []
        self._making = 0
        self._waiting: deque[_Waiter] = deque()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a call greenlet, on a connection of its own."""
        call = asyncio.ensure_future(self._run(fn, args, kwargs))
        return await asyncio.shield(call)  # see the module docstring

    async def _run(self, fn: Callable[..., T], args: Any, kwargs: dict[str, Any]) -> T:
        connection = await self._acquire()
        try:
            return await _in_greenlet(connection, lambda: fn(*args, **kwargs))
        finally:
            self._release(connection)

    async def _acquire(self) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
                make = len(self._all) + self._making < self.size
                if make:
                    self._making += 1
                else:
                    waiter: asyncio.Future[Connection | None] = loop.create_future()
                    self._waiting.append((loop, waiter))
            if make:
                return await self._make()
            connection = await waiter
            if connection is not None:
                return connection
            # None: a connection could not be made; try again (and fail, if it still cannot).

    async def _make(self) -> Connection:
        try:
            connection = await asyncio.to_thread(self.engine.connect)
        except BaseException:
            with self._lock:
                self._making -= 1
            self._hand(None)  # a waiter counted on this one: let it try for itself
            raise
        with self._lock:
            self._making -= 1
            self._all.append(connection)
        return connection

    def _release(self, connection: Connection) -> None:
        if not self._hand(connection):
            with self._lock:
                self._idle.append(connection)

    def _hand(self, connection: Connection | None) -> bool:
        """Give `connection` to the first call waiting for one, if any."""
        with self._lock:
            while self._waiting:
                loop, waiter = self._waiting.popleft()
                if loop.is_closed():
                    continue
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if loop is running:
                    if waiter.done():
                        continue
                    waiter.set_result(connection)
                else:
                    loop.call_soon_threadsafe(_hand_over, waiter, connection, self)
                return True
        return False

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
            self._idle.clear()


def _hand_over(
    waiter: asyncio.Future[Connection | None], connection: Connection | None, calls: LoopCalls
) -> None:
    if not waiter.done():
        waiter.set_result(connection)
    elif connection is not None:
        calls._release(connection)
