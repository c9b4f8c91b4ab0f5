import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.docker.emulation import read_handlers
from orchestrator.doctor import Status, _check_emulation, check_registry

from .conftest import free_port

F_FLAGS = "flags: POCF"


def write_binfmt(root: Path, handlers: dict[str, str]) -> Path:
    root.mkdir(exist_ok=True)
    (root / "status").write_text("enabled\n")
    (root / "register").write_text("")
    for name, flags in handlers.items():
        (root / name).write_text(f"enabled\ninterpreter /usr/libexec/qemu-binfmt/{name}\n{flags}\noffset 0\n")
    return root


@pytest.mark.parametrize(
    "handlers, machine, status, says",
    [
        ({"qemu-aarch64": F_FLAGS, "qemu-arm": F_FLAGS}, "x86_64", Status.ok, "linux/arm/v7"),
        ({"qemu-aarch64": F_FLAGS}, "x86_64", Status.fail, "qemu-arm: missing"),
        ({"qemu-aarch64": "flags: OC", "qemu-arm": F_FLAGS}, "x86_64", Status.fail, "qemu-aarch64: no F flag"),
        ({"qemu-aarch64": F_FLAGS, "qemu-arm": F_FLAGS, "qemu-s390x": "flags: "}, "x86_64", Status.warn,
         "qemu-s390x: no F flag"),
        # On an arm64 host, arm64 and arm are native: only amd64 needs QEMU.
        ({"qemu-x86_64": F_FLAGS}, "aarch64", Status.ok, "linux/arm64"),
    ],
)
def test_emulation_check_judges_handlers(tmp_path: Path, handlers, machine, status, says) -> None:
    check = _check_emulation(read_handlers(write_binfmt(tmp_path / "binfmt", handlers)), machine)
    assert check.status is status, check
    assert says in check.summary
    if status is not Status.ok:
        assert check.fix


def test_emulation_check_fails_when_binfmt_misc_is_not_mounted(tmp_path: Path) -> None:
    check = _check_emulation(read_handlers(tmp_path), "x86_64")
    assert check.status is Status.fail
    assert "mount -t binfmt_misc" in (check.fix or "")


def test_registry_check_on_a_closed_port_fails_with_a_fix() -> None:
    check = check_registry(f"127.0.0.1:{free_port()}", timeout=2)
    assert check.status is Status.fail
    assert "does not answer" in check.summary and check.fix


@pytest.mark.engine
def test_doctor_reports_the_real_engine(registry) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "doctor", "--json", "--registry", registry.host],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    checks = {check["name"]: check for check in json.loads(out.stdout)["checks"]}
    assert checks["docker daemon"]["details"]["containerd_image_store"] is True
    assert checks["buildx"]["status"] == "ok"
    # Emulation judged from binfmt, not from buildx's short list.
    assert {"linux/arm64", "linux/arm/v7", "linux/arm/v6"} <= set(checks["emulation"]["details"]["platforms"])
    assert any(b["status"] == "running" for b in checks["builders"]["details"]["builders"])
    assert checks["registry"]["status"] == "ok"


@pytest.mark.engine
def test_doctor_with_an_unreachable_registry_exits_3() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "doctor", "--registry", f"localhost:{free_port()}"],
        capture_output=True, text=True,
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "FAIL  registry" in out.stdout


@pytest.mark.parametrize("handlers, missing", [
    ({"qemu-aarch64": F_FLAGS, "qemu-arm": F_FLAGS, "qemu-s390x": F_FLAGS}, {}),
    ({"qemu-aarch64": F_FLAGS, "qemu-s390x": F_FLAGS}, {"linux/arm/v7": "no qemu-arm binfmt handler"}),
    ({"qemu-aarch64": "flags: OC", "qemu-arm": F_FLAGS}, {"linux/arm64": "qemu-aarch64 handler lacks the F flag"}),
])
def test_a_build_reads_only_the_handlers_of_its_platforms_and_judges_them_as_doctor_does(
        tmp_path: Path, handlers: dict[str, str], missing: dict[str, str]) -> None:
    from orchestrator.docker.emulation import missing_emulators
    from orchestrator.model.platform import format_platform
    from orchestrator.model.platform_parse import parse_all

    root = write_binfmt(tmp_path / "binfmt", handlers)
    wanted = parse_all(["linux/amd64,linux/arm64,linux/arm/v7"])
    read = read_handlers(root, only={"qemu-x86_64", "qemu-aarch64", "qemu-arm"})
    assert read is not None and {h.name for h in read} <= {"qemu-aarch64", "qemu-arm"}  # s390x not read
    found = missing_emulators(wanted, "x86_64", read)
    assert {format_platform(p): why for p, why in found.items()} == missing
    assert found == missing_emulators(wanted, "x86_64", read_handlers(root))  # the same verdict as reading all
