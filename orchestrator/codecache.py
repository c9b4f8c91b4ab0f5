"""The methods `dataclasses` writes for orch's classes, compiled once and kept between runs.

Every `@dataclass` has its `__init__`, `__repr__`, `__eq__`, `__hash__` (and, frozen,
`__setattr__` and `__delattr__`) written as source text and compiled when its module is
imported: about 1.3 ms a class on a 2-CPU runner, 70% of it in `compile`, and a publish imports
some 75 of them, ~0.1 s of orch's own CPU per run, more than anything else it does. Python keeps
the bytecode of modules (.pyc), not of that text. This module does, as orch already keeps parsed
profiles: `install` gives the `dataclasses` module an `exec` of its own that takes each text's
code object from a file in the state directory (compiling only texts it has not seen), and `save`
writes the file back when the run compiled something new. The file keeps each code object as its
own marshalled bytes, unmarshalled only when a class asks for it: the file holds the classes of
every command (a few hundred texts), a publish uses about a third of them.

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

FORMAT = 2  # of the file: 2 keeps each code marshalled on its own, compiled without this module's __future__ flags
MAX_TEXTS = 4000  # a file grown past this (classes of many versions of orch) starts again
_codes: dict[str, CodeType | bytes] = {}  # text -> its code, or the code's marshalled bytes as kept
_new = False
_installed = False


def _path() -> str:
    """state.state_dir()'s rule (not imported: this runs before anything else), one file per bytecode version
    (the importer's own magic number: importlib.util, which says the same, costs an import)."""
    from importlib._bootstrap_external import MAGIC_NUMBER

    base = os.environ.get("ORCH_STATE_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"), "orch")
    return os.path.join(base, "code", f"dataclasses-{FORMAT}-{sys.implementation.cache_tag}-{MAGIC_NUMBER.hex()}.marshal")


def _load(path: str) -> dict[str, CodeType | bytes]:
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
    return {text: code for text, code in loaded.items() if isinstance(text, str) and isinstance(code, bytes)}


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """`exec` as dataclasses calls it (a text, its globals, a namespace), from a kept code object."""
    global _new
    if isinstance(source, str):
        code = _codes.get(source)
        if isinstance(code, bytes):
            import marshal

            try:
                code = marshal.loads(code)
            except (ValueError, EOFError, TypeError):
                code = None
            if not isinstance(code, CodeType):
                code = None  # not a code object after all: compiled below and replaced on save
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)  # as exec compiles it: no
            # `from __future__ import annotations` of this module, so annotations stay objects
            _new = True
        _codes[source] = code
        source = code
    exec(source, globals, locals)


def _inspect_on_first_use() -> None:
    """`dataclasses` imports `inspect` (and with it ast, dis, tokenize, linecache: ~12 ms of every
    run on a 2-CPU runner) for one call, `inspect.signature(cls)`, made only to write a `__doc__`
    for a class that has none; every orch dataclass has a docstring (a test keeps it so). Until
    something really uses it, `inspect` is a stand-in that imports the real module on its first
    attribute read, takes on everything the real one holds, and leaves the real one in
    sys.modules: whoever imported the stand-in (dataclasses) reads the real functions from then
    on, and later imports get the real module."""
    if "inspect" in sys.modules:
        return
    import types

    stand_in = types.ModuleType("inspect", "The inspect module, imported on first use (orchestrator.codecache).")

    def __getattr__(name: str) -> Any:
        if sys.modules.get("inspect") is stand_in:
            del sys.modules["inspect"]
        import importlib

        real = importlib.import_module("inspect")
        stand_in.__dict__.update({key: value for key, value in vars(real).items() if key != "__getattr__"})
        return getattr(real, name)

    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562: called for what the module lacks
    sys.modules["inspect"] = stand_in


def install() -> None:
    """From now on dataclasses compiles each method text at most once across runs (and does not
    import inspect until something uses it)."""
    global _installed
    if _installed:
        return
    _inspect_on_first_use()
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
            file.write(marshal.dumps({text: code if isinstance(code, bytes) else marshal.dumps(code)
                                      for text, code in _codes.items()}))
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
