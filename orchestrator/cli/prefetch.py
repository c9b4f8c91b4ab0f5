"""Start `orch verify REF`'s registry reads before the CLI framework loads.

typer and click take ~75 ms to import; reading an index and its configs is
~45 ms of waiting on the registry. For `orch verify REF` the reads start on a
thread first, so the two overlap. The verify command then takes the result
(or the very error it would have raised itself) instead of reading again.
Anything unusual (another command, a layout, an option before REF, a
reference that does not parse) skips the prefetch: the command reads as usual.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_DEFAULT_SWITCH = sys.getswitchinterval()

_started: dict[str, tuple[threading.Thread, dict[str, Any]]] = {}


def start(args: list[str]) -> None:
    if len(args) < 2 or args[0] != "verify" or args[1].startswith("-") or "://" in args[1]:
        return
    from orchestrator.errors import OrchError
    from orchestrator.model.references import parse_reference

    try:
        reference = parse_reference(args[1])
    except OrchError:
        return
    # Imported here, on the main thread: two threads importing the same modules can deadlock.
    from orchestrator.image.read import read_image

    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            outcome["inspection"] = read_image(reference)
        except BaseException as exc:  # noqa: BLE001 - handed to the command, which raises it
            outcome["error"] = exc

    # Hand the GIL over sooner than every 5 ms, so the reads answer while imports run.
    sys.setswitchinterval(0.0005)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    _started[args[1]] = (thread, outcome)


def take(ref: str) -> Any:
    """The prefetched Inspection for exactly this reference text, or None."""
    started = _started.pop(ref, None)
    if started is None:
        return None
    thread, outcome = started
    thread.join()
    sys.setswitchinterval(_DEFAULT_SWITCH)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["inspection"]
