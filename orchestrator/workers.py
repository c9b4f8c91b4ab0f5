"""A few threads over shared work, with plain `threading` (concurrent.futures, and the logging it
imports, cost ~7 ms of every `orch verify`'s start).

`parallel_map` hands its items to a small pool of threads that live as long as the process, so
each keeps its kept-alive registry connections from one step of a publish to the next (upload,
read-back, promotion). Pool tasks never wait on other pool tasks, so the pool cannot starve.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")

POOL_SIZE = 8
_tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_pool: list[threading.Thread] = []
_pool_lock = threading.Lock()


def _serve() -> None:
    while True:
        _tasks.get()()


def _grow(count: int) -> None:
    with _pool_lock:
        while len(_pool) < min(count, POOL_SIZE):
            thread = threading.Thread(target=_serve, name=f"orch-worker-{len(_pool)}", daemon=True)
            thread.start()
            _pool.append(thread)


def run_workers(work: Callable[[], None], count: int) -> None:
    """Run `work` on `count` threads of its own and wait; the first error is raised here.
    For long work (per-arch builds); short calls go through parallel_map's pool."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(count)]
    for thread in threads:
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

    def task(index: int) -> Callable[[], None]:
        def run() -> None:
            try:
                if not (fail_fast and errors):
                    results[index] = fn(items[index])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
            finally:
                slots.release()
                with lock:
                    left[0] -= 1
                    if not left[0]:
                        done.set()
        return run

    _grow(workers)
    for index in range(len(items)):
        slots.acquire()
        _tasks.put(task(index))  # after a failure (fail_fast) the task returns at once
    done.wait()
    if errors:
        raise errors[0]
    return results


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """first() and second() at once on the pool: both results, or the first error."""
    results: list[Any] = parallel_map(lambda call: call(), [first, second], 2)
    return results[0], results[1]


_preloading: list[threading.Thread] = []


def preload(*modules: str) -> None:
    """Import modules on a thread of their own, so the import overlaps waiting the main thread
    does meanwhile (git, buildx). Only for modules nothing else is importing at that moment."""
    import importlib

    thread = threading.Thread(target=lambda: [importlib.import_module(m) for m in modules], daemon=True)
    _preloading.append(thread)
    thread.start()


def settle(timeout: float = 5.0) -> None:
    """Let imports started by `preload` finish before the process exits: the interpreter tearing
    down while a thread is importing can crash it (a command that failed fast ended in SIGSEGV)."""
    deadline = time.monotonic() + timeout
    for thread in _preloading:
        thread.join(max(0.0, deadline - time.monotonic()))
