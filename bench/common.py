"""What the benchmarks share: the machine line, whole-command timing, byte-compiling like an install."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORCH = [sys.executable, "-m", "orchestrator"]
# Where scripts/buildkit-up.sh unpacks buildx 0.30.1 (what setup-buildx-action installs today);
# "system" is the machine's own (Debian's 0.13.1).
BUILDX_BINARIES = {"0.30.1": Path(os.environ.get("ORCH_STATE_DIR", "/var/lib/orch-engine")) / "buildkit" / "bin" /
                   "docker-buildx"}


def use_buildx(version: str) -> str:
    """Make `docker buildx` (for orch and for the raw commands alike) the buildx of `version`, as
    tests/conftest.py does: a private DOCKER_CONFIG whose plugin directory holds it, sharing the
    builders and logins of the current one. Returns what `docker buildx version` says now."""
    if version != "system":
        import shutil
        import tempfile

        binary = BUILDX_BINARIES.get(version)
        if binary is None or not os.access(binary, os.X_OK):
            sys.exit(f"--buildx {version}: no {binary} (scripts/buildkit-up.sh unpacks it)")
        home = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
        private = Path(tempfile.mkdtemp(prefix=f"orch-bench-buildx-{version}-"))
        (private / "cli-plugins").mkdir()
        (private / "cli-plugins" / "docker-buildx").symlink_to(binary)
        (home / "buildx").mkdir(parents=True, exist_ok=True)
        (private / "buildx").symlink_to(home / "buildx")
        if (home / "config.json").is_file():
            shutil.copy(home / "config.json", private / "config.json")
        os.environ["DOCKER_CONFIG"] = str(private)
    said = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True).stdout.split()
    return said[1] if len(said) > 1 else "unknown"


def registry_bench(doc: str | None, rounds: int) -> tuple[object, list[str]]:
    """What a registry benchmark starts with: its options (--rounds, --registry), sources
    byte-compiled, SOURCE_DATE_EPOCH fixed, a state directory of its own; the orch command (the
    console script, as users run it, else `python -m orchestrator`)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--registry", default="localhost:5000")
    args = parser.parse_args()
    compile_bytecode()
    os.environ["SOURCE_DATE_EPOCH"] = str(int(time.time()))
    os.environ["ORCH_STATE_HOME"] = tempfile.mkdtemp(prefix="orch-bench-state-")
    script = [str(Path(sys.executable).parent / "orch")]
    return args, script if Path(script[0]).exists() else ORCH


def compile_bytecode() -> None:
    """Byte-compile the package, as installing the wheel does. A checkout run with
    PYTHONDONTWRITEBYTECODE=1 (set on these machines) would otherwise recompile
    orch's own modules on every start, ~25 ms that no installed user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "orchestrator")], check=True)


def machine() -> str:
    cpus = os.cpu_count()
    mem_kb = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True).stdout.strip()
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True).stdout.split()[1:2]
    return (f"{platform.machine()}, {cpus} CPUs, {mem_kb // 1024 // 1024} GiB, {platform.platform()}, "
            f"dockerd {docker}, buildx {' '.join(buildx)}, Python {platform.python_version()}")


RETRIES: dict[str, int] = {}  # registry 500s retried, by command (distribution 2.8's tag-link race)


def timed(args: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None, attempts: int = 3) -> float:
    """Seconds until a whole command succeeds, failed attempts included (only a registry
    500 is retried); any other failure ends the benchmark with its output."""
    start = time.perf_counter()
    for attempt in range(attempts):
        result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env)
        if result.returncode == 0:
            return time.perf_counter() - start
        if "500 Internal Server Error" not in result.stderr or attempt == attempts - 1:
            break
        name = Path(args[0]).name
        RETRIES[name] = RETRIES.get(name, 0) + 1
    sys.exit(f"failed ({result.returncode}): {' '.join(args)}\n{result.stdout[-1500:]}\n{result.stderr[-2000:]}")


def alternate(a: list[str], b: list[str], rounds: int, before=None, *, env: dict[str, str] | None = None
              ) -> tuple[list[float], list[float]]:
    """a and b in turn, after a warm-up of each: their times, round by round (a pair's ratio is
    taken within the round, so the machine's drift cancels)."""
    prepare = before or (lambda: None)
    for command in (a, b):
        prepare()
        timed(command, attempts=8, env=env)
    a_times, b_times = [], []
    for _ in range(rounds):
        prepare()
        a_times.append(timed(a, attempts=8, env=env))
        prepare()
        b_times.append(timed(b, attempts=8, env=env))
    return a_times, b_times


def own_cpu(orch_args: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """orch's own CPU (user + system of its process and threads, not of buildx or git), per run:
    the command run through bench/own_cpu.py, which calls the console script's entry point."""
    import tempfile

    seconds = []
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r", suffix=".cpu") as out:
            timed([sys.executable, str(REPO / "bench" / "own_cpu.py"), out.name, *orch_args], attempts=8,
                  env=env)
            seconds.append(float(out.read().split()[-1]))
    return seconds


def load() -> str:
    """The load averages now (the machine is shared: say how busy it was)."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def table_head() -> None:
    """The header of the Markdown table every benchmark prints (rows: `row`)."""
    print("| measure | median | min | max | goal |")
    print("|---|---|---|---|---|")


def row(label: str, values: list[float], unit: str = " s", target: str = "", digits: int = 2) -> str:
    """A Markdown table row: median, min, max."""
    return (f"| {label} | {statistics.median(values):.{digits}f}{unit} | {min(values):.{digits}f}{unit} | "
            f"{max(values):.{digits}f}{unit} | {target} |")


def ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]
