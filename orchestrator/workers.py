"""A few threads over shared work, with plain `threading`: concurrent.futures (and the
logging it imports) cost ~7 ms of every `orch verify`'s start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_workers(work: Callable[[], None], count: int) -> None:
    """Run `work` on `count` threads and wait; the first error is raised here."""
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


def parallel_map(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """fn over items on a few threads, results in order."""
    results: list[Any] = [None] * len(items)
    indexes = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            results[index] = fn(items[index])

    run_workers(work, min(workers, len(items)))
    return results
