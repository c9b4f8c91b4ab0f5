"""`orch doctor`: is this machine ready to publish multi-arch images?

Each check is ok / warn / fail (or skip when what it needs already failed)
and carries the fix in words. Nothing here changes the machine.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.docker import probe
from orchestrator.docker.builders import nodes_json, with_given_platforms
from orchestrator.docker.emulation import BINFMT_DIR, BinfmtHandler, handler_state, read_handlers
from orchestrator.docker.facts import BuilderInfo
from orchestrator.docker.runner import Engine
from orchestrator.errors import OrchError
from orchestrator.model.platform_table import qemu_handlers
from orchestrator.model.references import Reference
from orchestrator.status import Status

# Without these two a user cannot publish the ARM images most people want.
ESSENTIAL_QEMU = ("aarch64", "arm")


@dataclass(frozen=True)
class Check:
    """One line of `orch doctor`: what was checked, ok / warn / fail / skip, and the fix in words."""

    name: str
    status: Status
    summary: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoctorReport:
    """Every check `orch doctor` ran; it fails when any check does."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status is not Status.fail for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{**asdict(check), "status": check.status.value} for check in self.checks],
        }


def run_doctor(
    engine: Engine,
    registry: str | None = None,
    binfmt_dir: Path = BINFMT_DIR,
    machine: str | None = None,
) -> DoctorReport:
    checks = [_check_client(engine)]
    daemon = _check_daemon(engine) if checks[0].status is Status.ok else _skipped("docker daemon", "docker client")
    checks.append(daemon)
    checks.append(_check_buildx(engine) if daemon.status is not Status.skip else _skipped("buildx", "docker client"))
    checks.append(_check_emulation(read_handlers(binfmt_dir), machine or os.uname().machine))
    if daemon.status is Status.ok and checks[2].status is Status.ok:
        checks.append(_check_builders(engine, checks[3]))
    else:
        checks.append(_skipped("builders", "a running daemon with buildx"))
    if registry:
        from orchestrator.registry import reach

        # The registry is reached as the daemon doctor checks would reach it (its insecure registries).
        reach.given_daemon_config(lambda: probe.engine_facts(engine).registry_config)
        checks.append(check_registry(registry))
    checks.append(_check_promotions())
    checks.append(_check_cosign())
    return DoctorReport(tuple(checks))


def _check_cosign() -> Check:
    """cosign is optional: only --sign and verify --key need it."""
    import shutil

    from orchestrator.processes import output
    from orchestrator.publish.signing import COSIGN_FIX

    found = shutil.which("cosign")
    if not found:
        return Check("cosign", Status.skip, "not installed (optional: only --sign and verify --key need it)",
                     COSIGN_FIX)
    printed = output([found, "version"], timeout=10) or ""
    version = next((line.split(":", 1)[1].strip() for line in printed.splitlines() if line.startswith("GitVersion")),
                   "installed")
    return Check("cosign", Status.ok, f"{version} at {found} (for --sign and verify --key)")


def _check_promotions() -> Check:
    """Promotions a killed orch left unfinished (the journal in the state directory)."""
    from orchestrator.publish import journal

    found = journal.unfinished()
    if not found:
        return Check("promotions", Status.ok, "none cut short")
    said = [u.describe() for u in found]
    return Check("promotions", Status.warn, "; ".join(said),
                 "run the same build or release command again: it moves the rest to a verified digest")


def _skipped(name: str, needs: str) -> Check:
    return Check(name, Status.skip, f"not checked: needs {needs}")


def _check_client(engine: Engine) -> Check:
    try:
        version = engine.client_version()
    except OrchError as exc:
        return Check("docker client", Status.fail, exc.message, exc.fix)
    return Check("docker client", Status.ok, version, details={"version": version})


def _check_daemon(engine: Engine) -> Check:
    try:
        facts = probe.engine_facts(engine)
    except OrchError as exc:
        return Check("docker daemon", Status.fail, exc.message, exc.fix)
    info, containerd_store = facts.info, facts.containerd_store
    details = {
        "version": info.get("ServerVersion"),
        "containerd_image_store": containerd_store,
        "storage_driver": info.get("Driver"),
        "architecture": info.get("Architecture"),
        # What the registry check goes by (registry.reach), as docker does.
        "insecure_registries": list(facts.insecure_registries),
        "registry_mirrors": list(facts.mirrors),
    }
    summary = f"{details['version']} on {details['architecture']}, storage {details['storage_driver']}"
    if containerd_store:
        return Check("docker daemon", Status.ok, summary + ", containerd image store on", details=details)
    return Check(
        "docker daemon",
        Status.warn,
        summary + ", containerd image store OFF: the `docker` driver cannot keep multi-platform images",
        fix='add {"features": {"containerd-snapshotter": true}} to /etc/docker/daemon.json and restart dockerd, '
        "or use a docker-container builder",
        details=details,
    )


def _check_buildx(engine: Engine) -> Check:
    try:
        version = engine.buildx_version()
    except OrchError as exc:
        return Check("buildx", Status.fail, exc.message, exc.fix)
    return Check("buildx", Status.ok, version, details={"version": version})


def _check_emulation(handlers: list[BinfmtHandler] | None, machine: str) -> Check:
    fix_install = (
        "install QEMU handlers: `apt-get install qemu-user-static binfmt-support` (Debian/Ubuntu), "
        "or `docker run --privileged --rm tonistiigi/binfmt --install all`"
    )
    if handlers is None:
        return Check(
            "emulation",
            Status.fail,
            f"binfmt_misc is not mounted at {BINFMT_DIR}: foreign-architecture RUN steps cannot execute",
            fix="mount it (`mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`), then " + fix_install,
        )
    by_arch = {h.qemu_arch: h for h in handlers if h.qemu_arch}
    rows = []
    runnable: list[str] = []
    problems: list[str] = []
    for arch, platforms in qemu_handlers().items():
        handler = by_arch.get(arch)
        state = handler_state(arch, machine, handlers)
        rows.append({"qemu": arch, "platforms": list(platforms), "state": state,
                     "flags": handler.flags if handler else None})
        if state in {"native", "ok"}:
            runnable.extend(platforms)
        elif arch in ESSENTIAL_QEMU or (handler is not None):
            problems.append(f"qemu-{arch}: {state}")
    details = {"machine": machine, "handlers": rows, "platforms": runnable}
    summary = f"can run {len(runnable)} platforms ({', '.join(runnable)})"
    if any(p.startswith(f"qemu-{a}:") for a in ESSENTIAL_QEMU for p in problems):
        return Check("emulation", Status.fail, summary + "; " + "; ".join(problems), fix_install, details)
    if problems:
        return Check(
            "emulation", Status.warn, summary + "; " + "; ".join(problems),
            "re-register the handlers with the F flag: reinstall qemu-user-static, "
            "or `docker run --privileged --rm tonistiigi/binfmt --install all`",
            details,
        )
    return Check("emulation", Status.ok, summary, details=details)


def _check_builders(engine: Engine, emulation: Check) -> Check:
    try:
        builders = with_given_platforms(engine, probe.builders(engine))
    except OrchError as exc:
        return Check("builders", Status.fail, exc.message, exc.fix)
    rows = [
        {"name": b.name, "driver": b.driver, "status": b.status, "platforms": list(b.platforms),
         "nodes": nodes_json(b)}
        for b in builders
    ]
    running = [b for b in builders if b.status == "running"]
    summary = "; ".join(f"{b.name} ({b.driver}, {b.status}{_routing(b)})" for b in builders) or "none"
    # The builder's list under-reports QEMU (no arm/v7, arm/v6, 386 although they
    # build): say what binfmt adds rather than flag a gap that is not there.
    reported = {p for b in running for p in b.platforms}
    by_binfmt = [p for p in emulation.details.get("platforms", []) if p not in reported]
    details = {"builders": rows, "buildable_by_binfmt_not_listed": by_binfmt}
    if by_binfmt:
        summary += f"; also buildable through QEMU though not listed by buildx: {', '.join(by_binfmt)}"
    if not running:
        return Check(
            "builders", Status.fail, summary,
            "bootstrap one: `docker buildx inspect --bootstrap` (or `orch builder ensure` once builds exist)",
            details,
        )
    return Check("builders", Status.ok, summary, details=details)


def _routing(builder: BuilderInfo) -> str:
    """For a builder of several nodes, which node builds what: `; farm-amd64 builds linux/amd64
    and platforms no node is given / farm-arm builds linux/arm64`."""
    if len(builder.nodes) < 2:
        return ""
    parts = []
    for route in builder.routes():
        what = ", ".join(route.platforms)
        if route.takes_the_rest:
            what = f"{what} and platforms no node is given" if what else "platforms no node is given"
        parts.append(f"{route.node.name} builds {what or 'nothing'}")
    return "; " + " / ".join(parts)


def check_registry(address: str, timeout: float = 5.0) -> Check:
    """GET /v2/ on HOST:PORT, through orch's own registry client (its TLS, proxy and CA
    settings); 200 or 401 means a registry answers."""
    from orchestrator.registry.transport import Transport

    host = address.split("/")[0]
    transport = Transport(Reference(host, "_"), timeout=timeout)
    url = f"{transport.base}/v2/"
    try:
        status = transport.api_status()
        url = f"{transport.base}/v2/"  # where it answered (a loopback registry may speak plain HTTP)
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or exc
        return Check(
            "registry", Status.fail, f"{host!r} does not answer at {url}: {reason}",
            f"start the registry (local demo: `make engine` starts one on 127.0.0.1:5000) or check {host!r}",
            {"url": url},
        )
    if status in (200, 401):
        auth = " (needs login)" if status == 401 else ""
        return Check("registry", Status.ok, f"{host} answers the registry API{auth}", details={"url": url})
    return Check(
        "registry", Status.fail, f"{host!r} answered HTTP {status} at {url}, not a registry API",
        f"check that {host!r} is a registry (OCI distribution API at /v2/)", {"url": url},
    )
