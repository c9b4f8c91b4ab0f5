import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import BadInput
from orchestrator.model.platform import format_all, format_platform
from orchestrator.model.platform_match import Device, MatchPolicy, best_match, can_run, detect_host, lint_order, order
from orchestrator.model.platform_parse import parse, parse_all

from . import orch_processes

runner = CliRunner()

# input, normalized (format_all), a platform it must be able to run (or None)
PARSE_TABLE = [
    # OCI names
    ("linux/amd64", "linux/amd64", "linux/386"),
    ("linux/arm64", "linux/arm64", "linux/arm/v7"),
    ("linux/arm64/v8", "linux/arm64", None),
    ("linux/arm/v7", "linux/arm/v7", "linux/arm/v6"),
    ("linux/arm/v6", "linux/arm/v6", "linux/arm/v5"),
    ("linux/arm/v5", "linux/arm/v5", None),
    ("linux/arm", "linux/arm/v7", "linux/arm/v5"),
    ("LINUX/ARM/V7", "linux/arm/v7", None),
    ("linux/amd64/v1", "linux/amd64", None),
    ("linux/amd64/v3", "linux/amd64/v3", "linux/amd64/v2"),
    ("linux/386", "linux/386", None),
    ("linux/ppc64le", "linux/ppc64le", None),
    ("linux/s390x", "linux/s390x", None),
    ("linux/riscv64", "linux/riscv64", None),
    ("linux/mips64le", "linux/mips64le", None),
    ("linux/loong64", "linux/loong64", None),
    # containerd shorthands
    ("arm64", "linux/arm64", None),
    ("arm/v6", "linux/arm/v6", None),
    ("arm/7", "linux/arm/v7", None),
    ("linux/arm/7", "linux/arm/v7", None),
    # official-image prefixes
    ("arm32v5", "linux/arm/v5", None),
    ("arm32v6", "linux/arm/v6", None),
    ("arm32v7", "linux/arm/v7", None),
    ("arm64v8", "linux/arm64", None),
    ("i386", "linux/386", None),
    ("amd64", "linux/amd64", None),
    ("winamd64", "windows/amd64", None),
    # uname -m
    ("x86_64", "linux/amd64", None),
    ("i686", "linux/386", None),
    ("armv5tel", "linux/arm/v5", None),
    ("armv6l", "linux/arm/v6", None),
    ("armv7l", "linux/arm/v7", None),
    ("armv8l", "linux/arm/v7", None),
    ("aarch64", "linux/arm64", None),
    ("loongarch64", "linux/loong64", None),
    # Debian
    ("armhf", "linux/arm/v7", None),
    ("armel", "linux/arm/v5", None),
    ("ppc64el", "linux/ppc64le", None),
    ("mips64el", "linux/mips64le", None),
    ("linux/armhf", "linux/arm/v7", None),
    # buildx $TARGETARCH$TARGETVARIANT
    ("armv7", "linux/arm/v7", None),
    ("linux/armv6", "linux/arm/v6", None),
    # Windows with os.version, both spellings
    ("windows/amd64:10.0.17763", "windows(10.0.17763)/amd64", "windows(10.0.17763.1234)/amd64"),
    ("windows(10.0.20348)/amd64", "windows(10.0.20348)/amd64", None),
    ("  linux/arm64  ", "linux/arm64", None),
]


@pytest.mark.parametrize("text, normalized, runs", PARSE_TABLE)
def test_parse_normalizes_every_naming_scheme(text: str, normalized: str, runs: str | None) -> None:
    platform = parse(text)
    assert format_all(platform) == normalized
    # Round trip: format -> parse gives the same platform.
    assert parse(format_all(platform)) == platform
    assert parse(format_platform(platform)).key == platform.key
    assert can_run(platform, platform)
    if runs:
        assert can_run(platform, parse(runs))


INVALID = [
    ("", "empty platform"),
    ("   ", "empty platform"),
    ("linux", "names an OS but no architecture"),
    ("linux/armv9", "unknown architecture"),
    ("linux/arm/v3", 'unknown variant "v3" for arm'),
    ("linux/amd64/v7", 'unknown variant "v7" for amd64'),
    ("linux/arm64/v7", 'unknown variant "v7" for arm64'),
    ("windos/amd64", "neither an OS nor an architecture"),
    ("linux/arm/v7/extra", "unknown platform"),
    ("linux//arm", "unknown platform"),
    ("armhf/v6", 'already means arm/v7'),
    ("windows/amd64:latest", "invalid os.version"),
    ("linux/z80", "unknown architecture"),
]


@pytest.mark.parametrize("text, says", INVALID)
def test_invalid_platforms_are_rejected_with_the_value_quoted(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(text)
    assert says in caught.value.message
    assert caught.value.fix


@pytest.mark.parametrize("text, suggestion", [("linux/amd46", "linux/amd64"), ("arm32v8", "arm32v7"),
                                              ("aarch46", "aarch64"), ("armv7h", "linux/arm/v7")])
def test_unknown_names_get_a_did_you_mean(text: str, suggestion: str) -> None:
    with pytest.raises(BadInput, match="did you mean") as caught:
        parse(text)
    assert suggestion in caught.value.message


@pytest.mark.slow
@given(st.text(max_size=40))
@settings(max_examples=500, deadline=None)
def test_parse_raises_nothing_but_bad_input(text: str) -> None:
    try:
        platform = parse(text)
    except BadInput:
        return
    assert parse(format_all(platform)) == platform


@given(st.lists(st.sampled_from([row[0] for row in PARSE_TABLE]), max_size=8))
def test_order_is_deterministic_and_deduplicated(names: list[str]) -> None:
    platforms = [parse(n) for n in names]
    ordered = order(platforms)
    assert ordered == order(list(reversed(platforms)))
    assert len({(*p.key, p.os_version) for p in ordered}) == len(ordered)


def test_parse_all_splits_commas_and_repeats_and_dedupes() -> None:
    got = parse_all(["linux/arm64,armhf", "arm32v7", "linux/amd64"])
    assert [format_platform(p) for p in got] == ["linux/arm64", "linux/arm/v7", "linux/amd64"]


def test_order_puts_arm_variants_ascending() -> None:
    got = order(parse_all(["linux/arm/v7", "linux/arm64", "linux/arm/v6", "linux/amd64", "linux/arm/v5",
                           "windows/amd64:10.0.20348", "windows/amd64:10.0.17763", "linux/386"]))
    assert [format_all(p) for p in got] == [
        "linux/amd64", "linux/arm64", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/386",
        "windows(10.0.17763)/amd64", "windows(10.0.20348)/amd64",
    ]


# host, entries, index pulled by a modern client, index pulled by a first-match client
MATCH_TABLE = [
    ("linux/arm/v7", ["linux/arm64", "linux/arm/v6", "linux/arm/v7"], 2, 1),
    ("linux/arm/v6", ["linux/arm/v7", "linux/arm/v6"], 1, 0),  # the biarms Pi 1 case
    ("linux/arm/v5", ["linux/arm/v6", "linux/arm/v7"], None, 0),
    ("linux/arm64", ["linux/arm/v7", "linux/arm64"], 1, 1),
    ("linux/arm64", ["linux/arm/v7", "linux/amd64"], 0, None),  # 32-bit fallback on AArch32 CPUs
    ("linux/amd64", ["linux/386", "linux/arm64"], 0, None),
    ("linux/amd64", ["linux/386", "linux/amd64"], 1, 1),
    ("linux/amd64/v2", ["linux/amd64/v3", "linux/amd64"], 1, 0),
    ("windows/amd64:10.0.17763", ["windows/amd64:10.0.20348", "windows/amd64:10.0.17763"], 1, 0),
]


@pytest.mark.parametrize("host, entries, best, first", MATCH_TABLE)
def test_best_match_under_both_policies(host: str, entries: list[str], best: int | None, first: int | None) -> None:
    platforms = [parse(e) for e in entries]
    assert best_match(platforms, parse(host), MatchPolicy.best) == best
    assert best_match(platforms, parse(host), MatchPolicy.first) == first


def test_arm64_without_aarch32_does_not_run_arm() -> None:
    assert best_match([parse("linux/arm/v7")], parse("linux/arm64"), aarch32=False) is None


def test_lint_names_the_pi_zero_for_v7_before_v6() -> None:
    problems = lint_order(parse_all(["linux/arm64", "linux/arm/v7", "linux/arm/v6"]))
    errors = [p for p in problems if p.severity == "error"]
    assert any("Raspberry Pi Zero" in str(p) and "cannot run" in str(p) for p in errors)


def test_lint_of_our_own_order_has_no_errors() -> None:
    ordered = order(parse_all(["linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/arm64", "linux/amd64"]))
    problems = lint_order(ordered)
    assert not [p for p in problems if p.severity == "error"]
    # The honest cost: first-match clients on v7 get the v5 build.
    assert any(p.device_platform == parse("linux/arm/v7") for p in problems)


def test_lint_with_explicit_devices() -> None:
    pi_zero = Device("Pi Zero", parse("linux/arm/v6"))
    assert lint_order([parse("linux/arm/v6"), parse("linux/arm/v7")], [pi_zero]) == []


@pytest.mark.parametrize(
    "machine, cpuinfo, expected",
    [
        ("x86_64", "", "linux/amd64"),
        ("aarch64", "CPU architecture: 8\n", "linux/arm64"),
        ("armv7l", "model name\t: ARMv7 Processor rev 4 (v7l)\nCPU architecture: 7\n", "linux/arm/v7"),
        # Raspberry Pi 1 / Zero: reports CPU architecture 7, model name says ARMv6.
        ("armv6l", "model name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n", "linux/arm/v6"),
        ("armv7l", "model name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n", "linux/arm/v6"),
        ("armv8l", "CPU architecture: 8\n", "linux/arm/v7"),
        ("armv7l", "", "linux/arm/v7"),
    ],
)
def test_detect_host(machine: str, cpuinfo: str, expected: str) -> None:
    found = detect_host(machine, cpuinfo)
    assert format_all(found.platform) == expected
    assert found.reasons[0] == f"uname -m: {machine}"


def test_platforms_table_command_shows_every_scheme() -> None:
    result = runner.invoke(app, ["platforms"])
    assert result.exit_code == 0, result.output
    v7 = next(line for line in result.output.splitlines() if line.startswith("linux/arm/v7"))
    for name in ("arm32v7", "armv7l", "armhf", "arm/7", "qemu-arm", "Odroid XU4"):
        assert name in v7


def test_platforms_resolve_prints_oci_names() -> None:
    result = runner.invoke(app, ["platforms", "resolve", "arm32v7", "armhf", "armv7l", "aarch64", "x86_64",
                                 "i686", "ppc64el"])
    assert result.exit_code == 0, result.output
    resolved = [line.split()[1] for line in result.output.splitlines()]
    assert resolved == ["linux/arm/v7"] * 3 + ["linux/arm64", "linux/amd64", "linux/386", "linux/ppc64le"]


def test_platforms_resolve_json() -> None:
    result = runner.invoke(app, ["platforms", "resolve", "--json", "arm32v6,windows(10.0.17763+win32k)/amd64"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc[0] == {"input": "arm32v6", "platform": "linux/arm/v6", "os": "linux", "architecture": "arm",
                      "variant": "v6", "os_version": None, "os_features": []}
    assert (doc[1]["os_version"], doc[1]["os_features"]) == ("10.0.17763", ["win32k"])


def test_platforms_resolve_unknown_exits_2_with_did_you_mean() -> None:
    import sys

    out = orch_processes.run([sys.executable, "-m", "orchestrator", "platforms", "resolve", "armv7h"])
    assert out.returncode == 2
    assert 'unknown platform "armv7h"' in out.stderr and "did you mean" in out.stderr
    assert "Traceback" not in out.stderr


def test_platforms_host_says_how_it_decided() -> None:
    import os

    result = runner.invoke(app, ["platforms", "host", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    machine = os.uname().machine
    assert doc["reasons"][0] == f"uname -m: {machine}"
    # What each kernel's machine name is as an OCI platform (uname(1) and the OCI image spec);
    # 32-bit ARM is left out: its variant comes from /proc/cpuinfo.
    expected = {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "i686": "linux/386", "i386": "linux/386",
                "ppc64le": "linux/ppc64le", "s390x": "linux/s390x", "riscv64": "linux/riscv64"}
    if not machine.startswith("arm"):
        assert doc["platform"] == expected[machine]


@pytest.mark.parametrize("argv", [["platforms", "resolve", ""], ["platforms", "resolve", "linux/amd64,,linux/arm64"],
                                  ["verify", "localhost:5000/a/b:1", "--platform", ""],
                                  ["build", "-f", "Dockerfile.example", "--platform", "", "--dry-run"]])
def test_an_empty_platform_is_bad_input_everywhere(argv: list[str]) -> None:
    import sys

    from .conftest import REPO

    result = orch_processes.run([sys.executable, "-m", "orchestrator", *argv], cwd=REPO, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "empty" in result.stderr and "Traceback" not in result.stderr


def test_a_variant_orch_knows_no_device_for_is_read_with_a_note() -> None:
    result = runner.invoke(app, ["platforms", "resolve", "linux/arm/v4"])
    assert result.exit_code == 0, result.output
    assert "linux/arm/v4" in result.output and "knows no device that runs arm v4" in result.output


def test_an_os_version_that_is_not_numbers_is_ordered_not_fatal() -> None:
    """An index from a registry may carry any os.version: the numbered ones sort by their numbers,
    the rest after them by their text, and nothing raises."""
    from orchestrator.model.platform import Platform

    windows = [Platform("windows", "amd64", os_version=v) for v in ("10.0.x-preview", "10.0.20348.1", "10.0.17763.9")]
    assert [p.os_version for p in order(windows)] == ["10.0.17763.9", "10.0.20348.1", "10.0.x-preview"]
