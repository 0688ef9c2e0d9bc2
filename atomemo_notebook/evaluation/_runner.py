"""The evaluation loop, on the views' background event loop: units of work (a row, or a
multi-turn script) run at bounded concurrency over one client (so one 429 slows every
worker: the client pauses all its requests until Retry-After); each row has a deadline;
a stop keeps every finished row. Finished rows go to the cache as they end. A worker folds
and records a row while its next request is out (`_Later`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..model.chat import LEAF, AsyncChat
from ..model.reply import Reply
from ..protocol._errors import AtomemoError
from ..transport._client import REQUEST_SENT
from ..transport._watchdog import deadline_scope
from ._cache import Cache
from ._inputs import EvalRow, group_scripts
from ._records import row_record
from ._scorers import Scorer, score_row

if TYPE_CHECKING:
    from ._results import EvalResults

__all__ = ["run_evaluation"]


def _scored(record: dict[str, Any], row: EvalRow, reply: Reply | None, scorers: Sequence[Scorer]) -> dict[str, Any]:
    if reply is None or not scorers:
        return record | {"score_errors": None}
    scores, errors = score_row(scorers, {**row.data, "query": row.query, "expected": row.expected}, reply)
    return record | scores | {"score_errors": "; ".join(errors) or None}


async def _within(work: Awaitable[None], timeout: float) -> None:
    """`work` within `timeout` seconds, else TimeoutError (the transport's deadline scope: no
    task of its own per row)."""
    async with deadline_scope(time.monotonic() + timeout):
        await work


MAX_FORMS = 20  # forms answered for one row: a run that keeps asking is left paused

# What answers a paused row's form: (the row as a dict, the form) -> an action, or (action, inputs).
Respond = Callable[[dict[str, Any], Any], Any]


async def _answer_forms(chat: AsyncChat, row: EvalRow, reply: Reply, respond: Respond | None) -> None:
    """A row whose run waits on a person: `respond` answers each form (within the row's deadline);
    without it, or when it answers None, the row stays paused with its form in the record."""
    for _ in range(MAX_FORMS):
        form = reply.pending_input
        if respond is None or form is None or reply.status != "waiting":
            return
        said = respond({**row.data, "query": row.query, "expected": row.expected}, form)
        if said is None:
            return
        action, inputs = (said, {}) if isinstance(said, str) else said
        await chat.respond(reply, action, **dict(inputs))


ROW_FAILURES = (AtomemoError, ValueError, TypeError, OSError)  # a row's own failure, not the run's


async def _ask(chat: AsyncChat, row: EvalRow, timeout: float, respond: Respond | None = None,
               hold: bool = False) -> tuple[list[Reply], str | None, Callable[[], None] | None]:
    """The row's replies (a file first, if any), why it failed when no reply says so, and what
    folds the last reply when its answer was held (`AsyncChat._exchange`)."""
    replies: list[Reply] = []
    settle: Callable[[], None] | None = None

    async def turns() -> None:
        nonlocal settle
        if row.file is not None:
            ref = await chat.backend.upload(row.file, filename=None, mime_type=None, user=chat.user_id)
            replies.append(await chat.ask(ref))
        reply, settle = await chat._exchange(row.query, LEAF, row.inputs or None, None,
                                              hold=hold and respond is None)  # forms need the fold
        replies.append(reply)
        await _answer_forms(chat, row, replies[-1], respond)

    try:
        await _within(turns(), timeout)  # the row's deadline
        return replies, None, settle
    except TimeoutError:
        why = f"no answer within the row's timeout of {timeout:g} s"
    except ROW_FAILURES as exc:
        why = f"{type(exc).__name__}: {exc}"
    last = chat.last_reply
    if last is not None and (not replies or replies[-1] is not last):
        replies.append(last)
    return replies, why, settle


class _Later:
    """A worker's last answered row, folded and booked (record, result, cache entry) while the
    worker's next request is out (`REQUEST_SENT`), when at concurrency 1 the client would wait
    idle on the server; or when the worker's next ask ends without a request written, or the
    worker ends. Only a row whose answer was held waits so: a small one (at most HOLD_BYTES), so
    the work is bounded (a fold, a record, the views told, a cache line) and the next answer, if
    the server is that fast, is read at most that much later. A row with scorers is booked at
    once, as a scorer may take any time. `run` never raises (it is called from inside a request): what
    failed stops the run at once (as it did when rows were booked in turn), and `check` raises it."""

    def __init__(self, results: EvalResults, scorers: Sequence[Scorer], cache: Cache | None) -> None:
        self._results, self._scorers, self._cache = results, scorers, cache
        self.holds = not scorers
        self.row: tuple[EvalRow, list[Reply], str | None, Callable[[], None] | None] | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        row, self.row = self.row, None
        if row is not None:
            try:
                self.book(*row)
            except Exception as exc:
                self.error = self.error or exc
                self._results.fail(exc)  # nothing more is asked: what is in flight is stopped
                self._results.cancel()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def book(self, row: EvalRow, replies: list[Reply], why: str | None, settle: Callable[[], None] | None) -> None:
        if settle is not None:
            try:
                settle()
            except ROW_FAILURES as exc:
                why = why or f"{type(exc).__name__}: {exc}"
        last = replies[-1] if replies else None
        record = _scored(row_record(row, last, error=why, status="failed" if why and last is None else None),
                         row, last, self._scorers)
        if why is not None:
            record["status"] = "failed"
        self._results.finish(row, record, replies)
        if self._cache is not None and record["status"] != "paused":  # a paused row has not ended: asked again
            self._cache.store(row.key, record, replies)


class _Teller:
    """REQUEST_SENT for one ask: it lets go of the worker after the ask, since a task the ask
    starts (a socket hub's) copies the context, and must neither keep the evaluation alive nor
    book a row later on."""

    __slots__ = ("later",)

    def __init__(self, later: _Later) -> None:
        self.later: _Later | None = later

    def __call__(self) -> None:
        if self.later is not None:
            self.later.run()


async def _unit(results: EvalResults, base: AsyncChat, unit: list[EvalRow], timeout: float,
                respond: Respond | None, later: _Later) -> None:
    chat = base.fresh(None)  # its own conversation, over the same client
    failed_before = False
    for row in unit:
        if failed_before:  # a script cannot go on without the turn before
            results.finish(row, row_record(row, None, status="failed", error="an earlier turn of its "
                                           "conversation failed"), [])
            continue
        results.begin(row)
        teller = _Teller(later)
        sent = REQUEST_SENT.set(teller)
        try:  # a script's turn is folded before the next: its status decides whether there is one
            replies, why, settle = await _ask(chat, row, timeout, respond, hold=later.holds and len(unit) == 1)
        finally:
            teller.later = None
            REQUEST_SENT.reset(sent)
            later.run()  # written or not, the row before is booked by now
        if later.error is not None:
            if settle is not None:  # the run failed: this row is not booked, but its reply still ends
                with contextlib.suppress(Exception):
                    settle()
            later.check()
        if settle is not None:
            later.row = (row, replies, why, settle)  # booked while the next request is out
        else:
            later.book(row, replies, why, settle)
        last = replies[-1] if replies else None
        failed_before = why is not None or last is None or last.status != "succeeded"


async def run_evaluation(results: EvalResults, base: AsyncChat, scorers: Sequence[Scorer], concurrency: int,
                         timeout: float, cache: Cache | None, rerun_failed: bool,
                         respond: Respond | None = None) -> None:
    """Every row, then results.end(), always: a failure of the run itself (its cache, the app)
    ends the run with that error, which wait() raises; a row's own failure is that row's."""
    tasks: list[asyncio.Future[None]] = []
    try:
        if cache is not None and not await cache.open_run(lambda: results.stopping, results.wait_for):
            return  # stopped while another run held the cache (one writer at a time)
        await base.load_app()  # once: every row's chat shares what it learns (node names), not a GET each
        todo: list[list[EvalRow]] = []
        for unit in group_scripts(results.rows):
            cached = [cache.rows.get(row.key) if cache else None for row in unit]
            if all(c is not None and c.problem is None and (c.record["status"] == "succeeded" or not rerun_failed)
                   for c in cached):
                for row, entry in zip(unit, cached, strict=True):
                    assert entry is not None
                    # The row's identity is its own (the key is its content), whatever the line says.
                    mine = {"row": row.number, "key": row.key, "query": row.query, "conversation": row.conversation}
                    if row.row is not None:
                        mine["repeat"] = row.repeat
                    results.finish(row, entry.record | mine | {"cached": True}, entry.replies)
            else:
                todo.append(unit)  # a script runs whole again: its conversation cannot be resumed midway
        # `concurrency` workers take the units in order: a task per worker, not one per row
        # waiting on a semaphore (each row's task was created, scheduled, parked and woken).
        queue = iter(todo)

        async def worker() -> None:
            later = _Later(results, scorers, cache)
            try:
                for unit in queue:
                    if results.stopping:  # stopped, or the machinery failed: nothing more is asked
                        break
                    await _unit(results, base, unit, timeout, respond, later)
                later.run()
                later.check()
            except Exception as exc:
                results.fail(exc)  # a row's own failure is caught in _ask: this is the run's
                raise
            finally:  # stopped mid-ask: the row answered before it still ends, and is kept
                later.run()
                if later.error is not None:
                    results.fail(later.error)

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
        results.cancel = lambda: [t.cancel() for t in tasks]
        if tasks:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:  # a worker that raised: the machinery broke
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
    except Exception as exc:
        results.fail(exc)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        if cache is not None:
            cache.close_run()  # whatever happened, even while it read the file under the lock
        results.end()
