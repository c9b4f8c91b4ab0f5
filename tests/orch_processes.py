"""`orch` runs for tests as processes of their own, without the cost of a new interpreter each.

`run([sys.executable, "-m", "orchestrator", ...])` (or `run([ORCH_SCRIPT, ...])`, the console
script) answers what `subprocess.run(..., capture_output=True, text=True)` answers: the exit code,
stdout and stderr of a process of its own, run with the environment, working directory and stdin
asked for. The process is forked from a server started once per test process, which has imported
orch and its libraries already: starting `python -m orchestrator` costs ~0.3 s of CPU (the
interpreter and its imports), a fork ~10 ms. Each run is still a process: nothing a run changes
(orch's module state, structlog's set-up, signal handlers, sys.stdout, the environment, the
working directory) reaches the next one.

Where a fork is not a new interpreter, and why no test of a command's outcome can tell:
- every orch module and structlog are imported, before any test's environment is known, where a
  new interpreter imports only what the command needs (orch looks in sys.modules once: TLS errors
  are matched by ssl's classes when ssl is loaded, and only an ssl connection raises them). The
  modules that read the environment on import: typer (TYPER_USE_RICH, which orchestrator.cli.app
  sets before, as in a real run), structlog (NO_COLOR and FORCE_COLOR, for its defaults, which
  orch replaces) and zstandard (its import policy); a run whose environment differs from the
  server's there, or in any PYTHON* variable (read when an interpreter starts), gets a new
  interpreter instead;
- the end of a run joins its threads and runs atexit as the interpreter's end does, but skips
  tearing every module down (in a fork that would copy the server's heap: ~0.1 s);
- all runs of one test process share one hash seed.
So what the start or the end of an interpreter does is tested with real processes: `-X importtime`,
the threads left at exit (test_owned_threads), and so are signals, closed pipes and terminals. The
engine suite (tests marked engine) runs real processes throughout (conftest.py), as does
everything with ORCH_TEST_FORK=0.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ORCH_SCRIPT = str(Path(sys.executable).parent / "orch")
# Read by the server's modules on import, besides every PYTHON* variable (read at start).
IMPORT_TIME_VARIABLES = ("TYPER_USE_RICH", "NO_COLOR", "FORCE_COLOR", "PYTHON_ZSTANDARD_IMPORT_POLICY")
# What orch imports only when it runs, besides its own modules: structlog (with rich, asyncio and
# ssl behind it) on the first line logged, ~0.3 s of every command that logs.
LIBRARIES = ("structlog",)
# Set per test by conftest.py: the engine suite runs real processes.
forking = os.environ.get("ORCH_TEST_FORK", "1") != "0"


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
        input: str | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, input=input,
    timeout=timeout)`, forked from the server when `argv` runs orch (see the module docstring).
    Without `input`, stdin is empty (subprocess.DEVNULL), never the test process's own."""
    argv = [os.fspath(word) for word in argv]
    environment = dict(os.environ if env is None else env)
    server = _server() if forking and _entry(argv) is not None else None
    if server is None or not server.serves(environment):
        return subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout,
                              **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}))
    return server.run(argv, environment, os.path.abspath(cwd if cwd is not None else os.curdir), input, timeout)


def _entry(argv: list[str]) -> tuple[str, str] | None:
    """("module", "orchestrator") for `python -m orchestrator ...`, ("script", path) for `orch ...`."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1:3] == ["-m", "orchestrator"]:
        return "module", "orchestrator"
    if argv and argv[0] == ORCH_SCRIPT:
        return "script", ORCH_SCRIPT
    return None


def _decoded(data: bytes) -> str:
    """As text=True decodes a child's output: the locale's encoding, universal newlines."""
    import locale

    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


class _Server:
    """The test process's end of the server: one run at a time."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.environment = dict(os.environ)
        self.scratch = tempfile.mkdtemp(prefix="orch-runs-")
        self.log = os.path.join(self.scratch, "server.log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, __file__, str(theirs.fileno())],
                                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log, env=self.environment)
        theirs.close()
        self.socket = ours
        self.answers = ours.makefile("rb", buffering=0)  # unbuffered: select() sees every answer
        self.lock = threading.Lock()

    def serves(self, environment: Mapping[str, str]) -> bool:
        names = {n for n in (*environment, *self.environment) if n.startswith("PYTHON") or n in IMPORT_TIME_VARIABLES}
        return all(environment.get(n) == self.environment.get(n) for n in names)

    def run(self, argv: list[str], environment: dict[str, str], cwd: str, input: str | None,
            timeout: float | None) -> subprocess.CompletedProcess[str]:
        kind, entry = _entry(argv) or ("", "")
        with self.lock:
            paths = {name: os.path.join(self.scratch, name) for name in ("stdin", "stdout", "stderr")}
            Path(paths["stdin"]).write_bytes((input or "").encode())
            request = {"kind": kind, "entry": entry, "argv": argv, "env": environment, "cwd": cwd, **paths}
            self.socket.sendall(json.dumps(request).encode() + b"\n")
            pid = int(self._answer(None))
            try:
                status, killed = int(self._answer(timeout)), False
            except TimeoutError:  # as subprocess.run's timeout: the process is killed, then waited for
                os.kill(pid, 9)
                status, killed = int(self._answer(None)), True
            out, err = (_decoded(Path(paths[name]).read_bytes()) for name in ("stdout", "stderr"))
        if killed:
            raise subprocess.TimeoutExpired(argv, timeout or 0, out, err)
        return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), out, err)

    def _answer(self, timeout: float | None) -> str:
        import select

        if timeout is not None and not select.select([self.answers], [], [], timeout)[0]:
            raise TimeoutError
        line = self.answers.readline()
        if not line:
            raise RuntimeError(f"the orch process server ended ({self.process.wait()}): "
                               f"{Path(self.log).read_text()[-2000:]}")
        return line.decode().strip()

    def close(self) -> None:
        self.answers.close()
        self.socket.close()  # the server reads the end of its requests and exits
        self.process.wait(timeout=60)
        shutil.rmtree(self.scratch, ignore_errors=True)


_started: list[_Server] = []
_start_lock = threading.Lock()


def _server() -> _Server:
    with _start_lock:
        if not _started or _started[0].process.poll() is not None:
            _started[:] = [_Server()]
        return _started[0]


def stop() -> None:
    """End the server, if one was started (conftest.py, when the session ends)."""
    with _start_lock:
        for server in _started:
            server.close()
        _started.clear()


# -- the server: this file run as a script ------------------------------------


def _serve(fd: int) -> dict[str, Any] | None:
    """Import orch, then fork a child per request and answer its pid, then its wait status.
    In the child, returns its request; in the server, None once the test process is gone."""
    import gc
    import importlib
    import pkgutil

    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # this checkout's orch, as the tests import it
    import orchestrator.cli.app  # first: it sets TYPER_USE_RICH before typer reads it

    for found in pkgutil.walk_packages(orchestrator.__path__, "orchestrator."):
        if not found.name.endswith("__main__"):
            importlib.import_module(found.name)
    for library in LIBRARIES:
        importlib.import_module(library)
    gc.freeze()  # the server's objects stay out of the children's collections: no copy on write
    client = socket.socket(fileno=fd)
    requests = client.makefile("rb")
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            requests.close()
            client.close()
            return request
        client.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        client.sendall(f"{status}\n".encode())
    return None


def _become(request: dict[str, Any]) -> None:
    """In the child: take the request's streams, environment, directory and command line, then
    run orch as `python -m orchestrator` or the console script does."""
    import runpy

    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY | os.O_TRUNC),
                            (2, "stderr", os.O_WRONLY | os.O_TRUNC)):
        opened = os.open(request[name], flags | os.O_CREAT, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    argv = request["argv"]
    if request["kind"] == "module":  # sys.path[0] and sys.argv as `python -m` sets them
        sys.path[0] = os.getcwd()
        sys.argv = [argv[0], *argv[3:]]
        runpy.run_module(request["entry"], run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = os.path.dirname(request["entry"])
        sys.argv = list(argv)
        runpy.run_path(request["entry"], run_name="__main__")


def _end_as_python_does(program: Callable[[], None]) -> None:
    """Run `program`, then end as the interpreter ends one: an uncaught exception's traceback,
    SystemExit's code, the threads joined, atexit's calls, the streams flushed; never returns."""
    import atexit
    import signal

    code: Any = 0
    try:
        program()
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = "SIGINT" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else 1
    threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's exit: non-daemon threads joined
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int) and code != "SIGINT":
        print(code, file=sys.stderr)  # sys.exit("text")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code == "SIGINT":  # an uncaught KeyboardInterrupt ends Python by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit((code or 0) & 0xFF)


if __name__ == "__main__":
    asked = _serve(int(sys.argv[1]))
    if asked is not None:
        _end_as_python_does(lambda: _become(asked))
