"""One thread drives the engine; HTTP handlers hand it requests and read back events.

The engine is not thread-safe and wants one caller, so a single ``codit-engine`` thread owns
it: it applies the commands that handlers queued (add these requests, cancel that ticket),
runs ``engine.step()`` while there is work, and pushes each step's new tokens and finished
completions to the tickets they belong to, into the ticket's event loop
(``loop.call_soon_threadsafe``). Handlers never touch the engine.

* Bounded: at most ``queue_size`` samples are in flight (waiting or running); ``submit``
  raises ``QueueFull`` beyond that, which the app answers with 429.
* Cancel: a disconnected client or a timeout cancels its ticket; its rows leave the engine at
  the next command round, freeing their slots (``engine.cancel``).
* Same key twice: a seeded request's engine key is derived from its content (so the same
  request samples the same tokens), and an identical request already running makes the second
  one wait for the key rather than share it.
* Close: ``close`` stops new submissions, cancels what is left and ends the thread.

Events on a ticket's queue: ``("tokens", index, ids)``, ``("done", index, Completion)`` and
``("error", None, message)``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More samples than ``queue_size`` would be in flight."""


class Closed(Exception):
    """The scheduler is shutting down and takes no new requests."""


@dataclass(eq=False)
class Ticket:
    """One HTTP request's engine rows, and the queue its events arrive on.

    Attributes:
        keys: the engine keys of its samples, in choice order.
        stream: whether token events are wanted (else only completions).
        events: the asyncio queue the engine thread fills.
    """

    keys: list[str]
    stream: bool
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, int | None, Any]] = field(default_factory=asyncio.Queue)
    open: set[int] = field(default_factory=set)  # indices not finished yet (engine thread only)

    def push(self, batch: list[tuple[str, int | None, Any]]) -> None:
        _deliver(self.loop, [(self, batch)])


def _deliver(loop: asyncio.AbstractEventLoop, items: list[tuple[Ticket, list[Any]]]) -> None:
    """Put each ticket's events on its queue, in one wake-up of ``loop``."""

    def put() -> None:
        for ticket, batch in items:
            for event in batch:
                ticket.events.put_nowait(event)

    with suppress(RuntimeError):  # the loop is closed: nobody is listening any more
        loop.call_soon_threadsafe(put)


class Scheduler:
    """Owns the engine thread.

    Args:
        engine: an engine with the incremental API (``add``, ``cancel``, ``step``, ``has_work``).
        queue_size: most samples in flight at once.
    """

    def __init__(self, engine: Any, queue_size: int = 256):
        self.engine = engine
        self.queue_size = queue_size
        self._cond = threading.Condition()
        self._inbox: list[tuple[str, Any]] = []
        self._in_flight = 0  # samples submitted and not finished or cancelled (under _cond)
        self._closed = False
        self._live: dict[str, tuple[Ticket, int]] = {}  # engine thread only
        self._waiting: dict[str, deque[tuple[Any, Ticket, int]]] = {}
        # Samples, by what became of them (read by tests and for logs; under _cond).
        self.counts = {"submitted": 0, "completed": 0, "cancelled": 0}
        self._thread = threading.Thread(target=self._run, name="codit-engine", daemon=True)
        self._thread.start()

    # ---- called from the HTTP side ------------------------------------------------------
    def submit(self, requests: Sequence[Any], stream: bool = False) -> Ticket:
        """Queue one HTTP request's samples (engine ``Request``s); returns their ticket.

        Raises:
            QueueFull: they would take the samples in flight past ``queue_size``.
            Closed: the scheduler is shutting down.
        """
        ticket = Ticket([r.key for r in requests], stream, asyncio.get_running_loop())
        with self._cond:
            if self._closed:
                raise Closed
            if self._in_flight + len(requests) > self.queue_size:
                raise QueueFull
            self._in_flight += len(requests)
            self.counts["submitted"] += len(requests)
            self._inbox.append(("add", (ticket, list(requests))))
            self._cond.notify()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Drop whatever of ``ticket`` is still queued or running (idempotent)."""
        with self._cond:
            self._inbox.append(("cancel", ticket))
            self._cond.notify()

    def in_flight(self) -> int:
        """Samples submitted and not yet finished or cancelled."""
        with self._cond:
            return self._in_flight

    def close(self, timeout: float = 10.0) -> None:
        """Take no new requests, cancel those left, and stop the engine thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    # ---- the engine thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._inbox and not self._closed and not self.engine.has_work():
                    self._cond.wait()
                commands, self._inbox = self._inbox, []
                closed = self._closed
            for kind, payload in commands:
                if kind == "add":
                    self._add(*payload)
                else:
                    self._cancel(payload)
            if closed:
                for ticket in {t for t, _ in self._live.values()}:
                    self._cancel(ticket, "the server is shutting down")
                for waiters in list(self._waiting.values()):
                    for _, ticket, _ in list(waiters):
                        self._cancel(ticket, "the server is shutting down")
                return
            if self.engine.has_work():
                self._step()

    def _add(self, ticket: Ticket, requests: list[Any]) -> None:
        for index, request in enumerate(requests):
            ticket.open.add(index)
            if request.key in self._live or request.key in self._waiting:
                self._waiting.setdefault(request.key, deque()).append((request, ticket, index))
            else:
                self._live[request.key] = (ticket, index)
                self.engine.add(request)

    def _cancel(self, ticket: Ticket, reason: str | None = None) -> None:
        dropped = 0
        for index in sorted(ticket.open):
            key = ticket.keys[index]
            waiters = self._waiting.get(key)
            entry = next((w for w in waiters or () if w[1] is ticket), None)
            if waiters is not None and entry is not None:
                waiters.remove(entry)
                if not waiters:
                    del self._waiting[key]
            elif self._live.get(key) == (ticket, index):
                self.engine.cancel(key)
                self._release(key)
            dropped += 1
        ticket.open.clear()
        if dropped:
            with self._cond:
                self._in_flight -= dropped
                self.counts["cancelled"] += dropped
        if reason is not None:
            ticket.push([("error", None, reason)])

    def _release(self, key: str) -> None:
        """``key`` left the engine: start the next identical request waiting for it."""
        del self._live[key]
        waiters = self._waiting.get(key)
        if waiters:
            request, ticket, index = waiters.popleft()
            if not waiters:
                del self._waiting[key]
            self._live[key] = (ticket, index)
            self.engine.add(request)

    def _step(self) -> None:
        try:
            out = self.engine.step()
        except Exception as err:  # a bug or an out-of-memory: fail what runs, keep serving
            log.exception("the engine failed a step; failing the requests in flight")
            for ticket in {t for t, _ in self._live.values()}:
                self._cancel(ticket, f"the engine failed: {type(err).__name__}: {err}")
            return
        batches: dict[int, tuple[Ticket, list[tuple[str, int | None, Any]]]] = {}

        def emit(ticket: Ticket, event: tuple[str, int | None, Any]) -> None:
            batches.setdefault(id(ticket), (ticket, []))[1].append(event)

        # A finished row's last tokens are in its final text (cut at a stop string), not here.
        ending = {d.key for d in out.completions if d.finish_reason != "cancelled"}
        for key, ids in out.tokens.items():
            owner = self._live.get(key)
            if owner is not None and owner[0].stream and ids and key not in ending:
                emit(owner[0], ("tokens", owner[1], list(ids)))
        finished = 0
        for done in out.completions:
            owner = self._live.get(done.key)
            # A cancelled row was released when it was cancelled (its key may serve another
            # request by now); the engine's "cancelled" completion is only its receipt.
            if owner is None or done.finish_reason == "cancelled":
                continue
            ticket, index = owner
            self._release(done.key)
            ticket.open.discard(index)
            finished += 1
            emit(ticket, ("done", index, done))
        if finished:
            with self._cond:
                self._in_flight -= finished
                self.counts["completed"] += finished
        by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[tuple[Ticket, list[Any]]]]] = {}
        for ticket, events in batches.values():
            by_loop.setdefault(id(ticket.loop), (ticket.loop, []))[1].append((ticket, events))
        for loop, items in by_loop.values():  # one wake-up per loop and step, not per request
            _deliver(loop, items)
