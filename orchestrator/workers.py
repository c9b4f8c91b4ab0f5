"""A few threads over shared work, with plain `threading` (concurrent.futures, and the logging it
imports, cost ~7 ms of every `orch verify`'s start), every one of them owned.

`command()` is the life of one orch command (cli/entry.py opens it): the threads started here
during it (the pool, helpers, per-arch workers, imports started early) are cancelled where they
still run and joined when it ends, on every path, so the interpreter never tears down around a
live thread (a command that failed fast once ended in SIGSEGV that way).

Cancelling is a `Scope`: work registers what unblocks it (`on_cancel`; registry.http shuts its
sockets down) and waits through `pause`; a cancelled scope runs those callbacks once and makes
`pause` and `check` raise Cancelled. This module knows callables only, never sockets, so the
layers above own what their cancellation means. Pool tasks and per-arch workers run in the scope
of the thread that handed them over.

`parallel_map` hands its items to a small pool of threads that live as long as the command, so
each keeps its kept-alive registry connections from one step of a publish to the next (upload,
read-back, promotion). A pool task may hand work to the pool itself (`both` around a read that
reads an index's children in parallel): a thread is started whenever every pool thread already
has a task, queued or running, so no task waits for a thread that is waiting on it.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")

POOL_SIZE = 8
# How long the end of a command waits for a cancelled thread. Only a call that nothing can cancel
# (a docker CLI call to a hung daemon, left running by a Ctrl-C) takes it; that is said, not hidden.
JOIN_LIMIT = 60.0
_tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
_pool: list[threading.Thread] = []
_pool_lock = threading.Lock()
_load = 0  # pool tasks handed over and not yet finished
_owned: list[threading.Thread] = []  # helpers, per-arch workers, imports: joined when the command ends
_owned_lock = threading.Lock()
_local = threading.local()


class Cancelled(Exception):
    """The work's owner cancelled it (its command is ending): no failure of the work's own."""


class Scope:
    """What cancels a thread's work: callbacks that unblock it, run once when it is cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._next = 0

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when cancelled (at once if already); returns what forgets it."""
        with self._lock:
            if not self.cancelled.is_set():
                key, self._next = self._next, self._next + 1
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return lambda: None

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            callbacks, self._callbacks = list(self._callbacks.values()), {}
        for callback in callbacks:
            try:
                callback()
            except Exception:  # unblocking is best effort; the join that follows is not
                pass


def current() -> Scope | None:
    """The scope this thread works in (None outside any command: tests calling cores directly)."""
    scope: Scope | None = getattr(_local, "scope", None)
    return scope


@contextmanager
def within(scope: Scope | None) -> Iterator[None]:
    before = current()
    _local.scope = scope
    try:
        yield
    finally:
        _local.scope = before


def on_cancel(callback: Callable[[], None]) -> Callable[[], None]:
    """Register `callback` with this thread's scope (see Scope.on_cancel); a no-op outside any."""
    scope = current()
    return scope.on_cancel(callback) if scope is not None else (lambda: None)


def check() -> None:
    """Raise Cancelled if this thread's work has been cancelled."""
    scope = current()
    if scope is not None and scope.cancelled.is_set():
        raise Cancelled("cancelled: the command is ending")


def pause(seconds: float) -> None:
    """Sleep (a retry's backoff), cut short by a cancel, which raises Cancelled."""
    scope = current()
    if scope is None:
        threading.Event().wait(seconds)
        return
    if scope.cancelled.wait(seconds):
        raise Cancelled("cancelled: the command is ending")


def _own(thread: threading.Thread) -> None:
    with _owned_lock:
        _owned[:] = [t for t in _owned if t.is_alive()]
        _owned.append(thread)


class Helper(Generic[R]):
    """A call on a thread of its own, in a scope of its own: `result()` waits and returns or
    raises what it did; `close()` (or leaving the `with`) cancels it if it still runs and joins it."""

    def __init__(self, call: Callable[[], R], name: str) -> None:
        self.scope = Scope()
        self._outcome: list[tuple[bool, Any]] = []
        parent = current()
        if parent is not None:  # the command's end cancels it with everything else
            self._forget = parent.on_cancel(self.scope.cancel)
        else:
            self._forget = lambda: None
        self._thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)
        _own(self._thread)
        self._thread.start()

    def _run(self, call: Callable[[], R]) -> None:
        with within(self.scope):
            try:
                self._outcome.append((True, call()))
            except BaseException as exc:  # raised again in the owner's thread
                self._outcome.append((False, exc))

    def join(self, timeout: float | None = None) -> bool:
        """Wait (at most `timeout` seconds); whether it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self) -> R:
        self.join()
        self._forget()
        ok, value = self._outcome[0]
        if not ok:
            raise value
        result: R = value
        return result

    def close(self) -> None:
        if self._thread.is_alive():
            self.scope.cancel()
        self._thread.join()
        self._forget()

    def __enter__(self) -> Helper[R]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _serve() -> None:
    global _load
    _local.pool = True
    while True:
        task = _tasks.get()
        if task is None:  # the command is ending
            return
        try:
            task()
        finally:
            with _pool_lock:
                _load -= 1


def _hand_over(task: Callable[[], None]) -> None:
    """Queue a task for the pool, with a thread free for it: one is started when every pool
    thread has a task already. At most POOL_SIZE, but for tasks a pool task hands over (it waits
    for them, so they must not wait for it)."""
    global _load
    with _pool_lock:
        _load += 1
        if len(_pool) < _load and (len(_pool) < POOL_SIZE or getattr(_local, "pool", False)):
            thread = threading.Thread(target=_serve, name=f"orch-worker-{len(_pool)}", daemon=True)
            thread.start()
            _pool.append(thread)
    _tasks.put(task)


def run_workers(work: Callable[[], None], count: int) -> None:
    """Run `work` on `count` threads of its own and wait; the first error is raised here.
    For long work (per-arch builds); short calls go through parallel_map's pool. Should the wait
    be cut short (a signal), the threads stay owned: the command's end joins them."""
    errors: list[BaseException] = []
    scope = current()

    def guarded() -> None:
        with within(scope):
            try:
                work()
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

    threads = [threading.Thread(target=guarded, name=f"orch-build-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        _own(thread)
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def parallel_map(fn: Callable[[T], R], items: list[T], workers: int, *, fail_fast: bool = False) -> list[R]:
    """fn over items, at most `workers` at once on the pool, results in order; the first
    error is raised here (after every item has finished; with `fail_fast`, items not yet started
    when one fails are not started)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    left = [len(items)]
    done = threading.Event()
    lock = threading.Lock()
    slots = threading.Semaphore(workers)
    scope = current()

    def task(index: int) -> Callable[[], None]:
        def run() -> None:
            try:
                if not (fail_fast and errors):
                    with within(scope):
                        results[index] = fn(items[index])
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)
            finally:
                slots.release()
                with lock:
                    left[0] -= 1
                    if not left[0]:
                        done.set()
        return run

    for index in range(len(items)):
        slots.acquire()
        _hand_over(task(index))  # after a failure (fail_fast) the task returns at once
    done.wait()
    if errors:
        raise errors[0]
    return results


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """first() and second() at once on the pool: both results, or the first error."""
    results: list[Any] = parallel_map(lambda call: call(), [first, second], 2)
    return results[0], results[1]


def preload(*modules: str) -> None:
    """Import modules on a thread of their own, so the import overlaps waiting the main thread
    does meanwhile (git, buildx). Only for modules nothing else is importing at that moment."""
    import importlib

    thread = threading.Thread(target=lambda: [importlib.import_module(m) for m in modules], name="orch-preload",
                              daemon=True)
    _own(thread)
    thread.start()


@contextmanager
def command() -> Iterator[Scope]:
    """One command's life: its threads end with it (see the module's docstring)."""
    scope = Scope()
    with within(scope):
        try:
            yield scope
        finally:
            end(scope)


def end(scope: Scope | None = None) -> None:
    """Cancel what still runs (kept-alive sockets are shut too: the command is done with them),
    then join every thread started here, the pool's last."""
    if scope is not None:
        scope.cancel()
    with _owned_lock:
        owned = list(_owned)
    with _pool_lock:
        pool = list(_pool)
        _pool.clear()
    for _ in pool:
        _tasks.put(None)
    deadline = time.monotonic() + JOIN_LIMIT
    for thread in owned + pool:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _owned_lock:
        _owned[:] = [t for t in _owned if t.is_alive()]
    stuck = [thread.name for thread in owned + pool if thread.is_alive()]
    if stuck:
        try:
            sys.stderr.write(f"orch: warning: {', '.join(stuck)} still running {JOIN_LIMIT:g} s after the command "
                             "ended (a call nothing could cancel)\n")
        except (OSError, ValueError):
            pass  # stderr is gone: nobody is left to tell
