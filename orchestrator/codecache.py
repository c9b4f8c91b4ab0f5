"""The methods `dataclasses` writes for orch's classes, compiled once and kept between runs.

Every `@dataclass` has its `__init__`, `__repr__`, `__eq__`, `__hash__` (and, frozen,
`__setattr__` and `__delattr__`) written as source text and compiled when its module is
imported: about 1.3 ms a class on a 2-CPU runner, 70% of it in `compile`, and a publish imports
some 75 of them, ~0.1 s of orch's own CPU per run, more than anything else it does. Python keeps
the bytecode of modules (.pyc), not of that text. This module does, as orch already keeps parsed
profiles: `install` gives the `dataclasses` module an `exec` of its own that takes each text's
code object from a file in the state directory (compiling only texts it has not seen), and `save`
writes the file back when the run compiled something new.

Same text, same code: the key is the whole source text, the file is per Python bytecode version,
and exec runs the code object with the globals dataclasses passes, exactly as it runs the text.
The file is read only when it is this user's and nobody else can write it; anything unreadable
is ignored (the texts are compiled as before) and replaced on the next `save`.
"""

from __future__ import annotations

import os
import sys
from types import CodeType
from typing import Any

MAX_TEXTS = 4000  # a file grown past this (classes of many versions of orch) starts again
_codes: dict[str, CodeType] = {}
_new = False
_installed = False


def _path() -> str:
    """state.state_dir()'s rule (not imported: this runs before anything else), one file per bytecode version."""
    from importlib.util import MAGIC_NUMBER

    base = os.environ.get("ORCH_STATE_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"), "orch")
    return os.path.join(base, "code", f"dataclasses-{sys.implementation.cache_tag}-{MAGIC_NUMBER.hex()}.marshal")


def _load(path: str) -> dict[str, CodeType]:
    import marshal

    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno())
            if mode.st_uid != os.getuid() or mode.st_mode & 0o022:
                return {}  # another user's, or writable by others: never executed
            loaded = marshal.loads(file.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(loaded, dict) or len(loaded) > MAX_TEXTS:
        return {}
    return {text: code for text, code in loaded.items() if isinstance(text, str) and isinstance(code, CodeType)}


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """`exec` as dataclasses calls it (a text, its globals, a namespace), from a kept code object."""
    global _new
    if isinstance(source, str):
        code = _codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec")
            _codes[source] = code
            _new = True
        source = code
    exec(source, globals, locals)


def install() -> None:
    """From now on dataclasses compiles each method text at most once across runs."""
    global _installed
    if _installed:
        return
    import dataclasses

    _installed = True
    _codes.update(_load(_path()))
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # the module's global, before the builtin


def save() -> None:
    """Write the kept code back if this run compiled something new (atomically; a state directory
    that cannot be written leaves the texts to be compiled next time, as before)."""
    global _new
    if not _new:
        return
    import marshal
    import tempfile

    _new = False
    path = _path()
    temporary = None
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".dataclasses.", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(marshal.dumps(dict(_codes)))
        os.replace(temporary, path)
        temporary = None
    except (OSError, ValueError):
        pass  # a cache: the state directory's own warning is said where orch writes its records
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
