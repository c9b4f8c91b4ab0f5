"""orch's platform strings against containerd/platforms' own test tables.

Facts carried over from containerd's tests (TestParseSelector, TestParseSelectorInvalid,
TestFormatAllEncoding, TestFormatAllSkipsEmptyOSFeatures, TestOnly): each input with
containerd's result (on a linux/amd64 host, where containerd fills in the host's OS or
architecture) and orch's, and the reason beside every deliberate difference.

Source: containerd/platforms at 09756f59cb1d6b3fb368f371043d36e634789537 (2026-03-31),
platforms_test.go and compare_test.go; the variant spellings come from normalizeArch in its
database.go. Checked against that commit: 200 of the 204 inputs below appear there verbatim;
the other four are one of its inputs with the architecture it fills in written out
("windows()/amd64", "linux(+unsorted+erofs)/amd64") or a normalizeArch spelling
("linux/arm64/v8.0", "linux/arm/7").
"""

from __future__ import annotations

import pytest

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_all
from orchestrator.model.platform_match import can_run
from orchestrator.model.platform_parse import parse

SAME = None
OS_ONLY = "orch builds images, so a string naming only an OS is refused, with the host's architecture as the fix"
V7 = "same meaning: orch writes arm's default v7 out, containerd leaves the variant empty"
ARM64_V8 = "documented decision: v8 is arm64's baseline and is dropped, as containerd's Normalize does"
ARMEL = "documented decision: Debian's armel is ARMv5TE, so orch reads it as arm/v5 (containerd: v6)"

# input, containerd's result (FormatAll), orch's result (FormatAll, or "error: TEXT"), why they differ
PARSE_TABLE = [
    ("linux/arm64", "linux/arm64", "linux/arm64", SAME),
    ("linux/arm64/v8", "linux/arm64/v8", "linux/arm64", ARM64_V8),
    ("linux/arm", "linux/arm", "linux/arm/v7", V7),
    ("linux/arm/v6", "linux/arm/v6", "linux/arm/v6", SAME),
    ("linux/arm/v7", "linux/arm/v7", "linux/arm/v7", SAME),
    ("arm", "linux/arm", "linux/arm/v7", V7),
    ("armel", "linux/arm/v6", "linux/arm/v5", ARMEL),
    ("armhf", "linux/arm", "linux/arm/v7", V7),
    ("Aarch64", "linux/arm64", "linux/arm64", SAME),
    ("x86_64", "linux/amd64", "linux/amd64", SAME),
    ("Linux/x86_64", "linux/amd64", "linux/amd64", SAME),
    ("i386", "linux/386", "linux/386", SAME),
    ("linux", "linux/amd64", "error: names an OS but no architecture; did you mean linux/amd64", OS_ONLY),
    ("s390x", "linux/s390x", "linux/s390x", SAME),
    ("linux/s390x", "linux/s390x", "linux/s390x", SAME),
    ("macOS", "darwin/amd64", "error: names an OS but no architecture; did you mean darwin/amd64", OS_ONLY),
    ("windows", "windows/amd64", "error: names an OS but no architecture; did you mean windows/amd64", OS_ONLY),
    ("windows()", "windows/amd64", "error: did you mean windows/amd64", OS_ONLY),
    ("windows(10.0.17763)", "windows(10.0.17763)/amd64", "error: did you mean windows(10.0.17763)/amd64", OS_ONLY),
    ("windows(10.0.17763+win32k)", "windows(10.0.17763+win32k)/amd64",
     "error: did you mean windows(10.0.17763+win32k)/amd64", OS_ONLY),
    ("linux(+gpu)", "linux(+gpu)/amd64", "error: did you mean linux(+gpu)/amd64", OS_ONLY),
    ("linux(+gpu+simd)", "linux(+gpu+simd)/amd64", "error: did you mean linux(+gpu+simd)/amd64", OS_ONLY),
    ("linux(+unsorted+erofs)", "linux(+erofs+unsorted)/amd64", "error: did you mean linux(+erofs+unsorted)/amd64",
     OS_ONLY),
    ("windows(10.0.17763%2Bbuild.42)", "windows(10.0.17763%2Bbuild.42)/amd64",
     "error: did you mean windows(10.0.17763%2Bbuild.42)/amd64", OS_ONLY),
    ("windows(10.0.17763%2Bbuild.42+win32k)", "windows(10.0.17763%2Bbuild.42+win32k)/amd64",
     "error: did you mean windows(10.0.17763%2Bbuild.42+win32k)/amd64", OS_ONLY),
    ("windows(50%25done)", "windows(50%25done)/amd64", "error: did you mean windows(50%25done)/amd64", OS_ONLY),
    # The same OS options with an architecture: what orch is for.
    ("windows()/amd64", "windows/amd64", "windows/amd64", SAME),
    ("windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64", SAME),
    ("windows(10.0.17763+win32k)/amd64", "windows(10.0.17763+win32k)/amd64", "windows(10.0.17763+win32k)/amd64",
     SAME),
    ("linux(+gpu)/amd64", "linux(+gpu)/amd64", "linux(+gpu)/amd64", SAME),
    ("linux(+gpu+simd)/amd64", "linux(+gpu+simd)/amd64", "linux(+gpu+simd)/amd64", SAME),
    ("linux(+unsorted+erofs)/amd64", "linux(+erofs+unsorted)/amd64", "linux(+erofs+unsorted)/amd64", SAME),
    ("linux(7.2+other)/amd64", "linux(7.2+other)/amd64", "linux(7.2+other)/amd64", SAME),
    ("windows(10.0.17763%2Bbuild.42)/amd64", "windows(10.0.17763%2Bbuild.42)/amd64",
     "windows(10.0.17763%2Bbuild.42)/amd64", SAME),
    ("windows(10.0.17763%2Bbuild.42+win32k)/amd64", "windows(10.0.17763%2Bbuild.42+win32k)/amd64",
     "windows(10.0.17763%2Bbuild.42+win32k)/amd64", SAME),
    ("windows(50%25done)/amd64", "windows(50%25done)/amd64", "windows(50%25done)/amd64", SAME),
    # Invalid in containerd (TestParseSelectorInvalid) and in orch.
    ("", "error", "error: empty platform name", SAME),
    ("/linux/arm", "error", "error: did you mean linux/arm/v7", SAME),
    ("linux/arm/", "error", "error: did you mean linux/arm/v7", SAME),
    ("linux /arm", "error", "error: did you mean linux/arm/v7", SAME),
    ("linux/&arm", "error", "error: did you mean linux/arm/v7", SAME),
    ("linux/arm/foo/bar", "error", "error: more than three components", SAME),
    # Variants containerd reads (its normalizeArch and compare tables).
    ("linux/arm64/v9.0", "linux/arm64/v9", "linux/arm64/v9", SAME),
    ("linux/arm64/v8.0", "linux/arm64/v8", "linux/arm64", ARM64_V8),
    ("linux/arm64/v8.10", "linux/arm64/v8.10", "linux/arm64/v8.10", SAME),
    ("linux/arm64/v9.6", "linux/arm64/v9.6", "linux/arm64/v9.6", SAME),
    ("linux/arm/v4", "linux/arm/v4", "linux/arm/v4", SAME),
    ("linux/arm/v9", "linux/arm/v9", "linux/arm/v9", SAME),
    ("linux/arm/7", "linux/arm/v7", "linux/arm/v7", SAME),
    ("linux/amd64/v1", "linux/amd64", "linux/amd64", SAME),
]


@pytest.mark.parametrize("text, containerd, orch, why", PARSE_TABLE)
def test_orch_reads_containerds_strings(text: str, containerd: str, orch: str, why: str | None) -> None:
    if orch.startswith("error"):
        with pytest.raises(BadInput) as caught:
            parse(text)
        assert orch.removeprefix("error: ") in caught.value.message, caught.value.message
        assert f'"{text}"' in caught.value.message  # the value is quoted
        return
    parsed = parse(text)
    assert format_all(parsed) == orch
    assert parse(format_all(parsed)) == parsed  # the written form reads back the same
    if why is SAME:
        assert orch == containerd


def _p(os: str, arch: str, version: str | None = None, features: tuple[str, ...] = ()) -> Platform:
    return Platform(os, arch, None, version, features)


# TestFormatAllEncoding: a platform, containerd's written form; orch writes and reads it back the same.
ENCODING_TABLE = [
    (_p("windows", "amd64", "10.0.17763+build.42"), "windows(10.0.17763%2Bbuild.42)/amd64"),
    (_p("windows", "amd64", "10.0.17763+build.42", ("win32k",)), "windows(10.0.17763%2Bbuild.42+win32k)/amd64"),
    (_p("windows", "amd64", "50%done"), "windows(50%25done)/amd64"),
    (_p("windows", "amd64", "1.0(beta)"), "windows(1.0%28beta%29)/amd64"),
    (_p("windows", "amd64", "a/b"), "windows(a%2Fb)/amd64"),
    (_p("windows", "amd64", "10.0.17763"), "windows(10.0.17763)/amd64"),
    (_p("linux", "amd64", None, ("feat+v2",)), "linux(+feat%2Bv2)/amd64"),
    (_p("linux", "amd64", None, ("100%gpu",)), "linux(+100%25gpu)/amd64"),
    (_p("windows", "amd64", "10.0+build", ("feat+1",)), "windows(10.0%2Bbuild+feat%2B1)/amd64"),
    # TestFormatAllSkipsEmptyOSFeatures
    (_p("linux", "amd64", None, ("", "gpu", "", "simd")), "linux(+gpu+simd)/amd64"),
]


@pytest.mark.parametrize("platform, written", ENCODING_TABLE)
def test_os_version_and_features_are_written_and_read_as_containerd_does(platform: Platform, written: str) -> None:
    assert format_all(platform) == written
    back = parse(written)
    assert back.os_version == platform.os_version  # its case and its characters kept
    assert back.os_features == tuple(sorted(f for f in platform.os_features if f))


# TestOnly: a host platform, an image platform, and whether containerd's matcher says the host
# runs it. orch's can_run agrees on all of them.
COMPARE_TABLE = [
    ("linux/amd64", "linux/amd64", True),
    ("linux/amd64", "linux/386", True),
    ("linux/amd64", "linux/amd64/v2", False),
    ("linux/amd64", "linux/arm/v7", False),
    ("linux/amd64", "linux/arm64", False),
    ("linux/amd64", "windows/amd64", False),
    ("linux/amd64", "windows/arm", False),
    ("linux/amd64/v2", "linux/amd64", True),
    ("linux/amd64/v2", "linux/amd64/v1", True),
    ("linux/amd64/v2", "linux/amd64/v2", True),
    ("linux/amd64/v2", "linux/386", True),
    ("linux/amd64/v2", "linux/amd64/v3", False),
    ("linux/amd64/v2", "linux/amd64/v4", False),
    ("linux/amd64/v2", "linux/arm/v7", False),
    ("linux/amd64/v2", "linux/arm64", False),
    ("linux/amd64/v2", "windows/amd64", False),
    ("linux/amd64/v2", "windows/arm", False),
    ("linux/386", "linux/386", True),
    ("linux/386", "linux/amd64", False),
    ("linux/386", "linux/arm/v7", False),
    ("linux/386", "linux/arm64", False),
    ("linux/386", "windows/amd64", False),
    ("linux/386", "windows/arm", False),
    ("windows/amd64", "windows/amd64", True),
    ("windows/amd64", "windows(10.0.17763)/amd64", True),
    ("windows/amd64", "linux/amd64", False),
    ("windows/amd64", "linux/arm/v7", False),
    ("windows/amd64", "linux/arm64", False),
    ("windows/amd64", "windows/arm", False),
    ("linux/arm/v8", "linux/arm", True),
    ("linux/arm/v8", "linux/arm/v5", True),
    ("linux/arm/v8", "linux/arm/v6", True),
    ("linux/arm/v8", "linux/arm/v7", True),
    ("linux/arm/v8", "linux/arm/v8", True),
    ("linux/arm/v8", "linux/amd64", False),
    ("linux/arm/v8", "linux/arm/v4", False),
    ("linux/arm/v8", "linux/arm64", False),
    ("linux/arm/v8", "windows/amd64", False),
    ("linux/arm/v8", "windows/arm", False),
    ("linux/arm/v7", "linux/arm", True),
    ("linux/arm/v7", "linux/arm/v5", True),
    ("linux/arm/v7", "linux/arm/v6", True),
    ("linux/arm/v7", "linux/arm/v7", True),
    ("linux/arm/v7", "linux/amd64", False),
    ("linux/arm/v7", "linux/arm/v4", False),
    ("linux/arm/v7", "linux/arm/v8", False),
    ("linux/arm/v7", "linux/arm64", False),
    ("linux/arm/v7", "windows/amd64", False),
    ("linux/arm/v7", "windows/arm", False),
    ("linux/arm/v6", "linux/arm/v5", True),
    ("linux/arm/v6", "linux/arm/v6", True),
    ("linux/arm/v6", "linux/amd64", False),
    ("linux/arm/v6", "linux/arm", False),
    ("linux/arm/v6", "linux/arm/v4", False),
    ("linux/arm/v6", "linux/arm/v7", False),
    ("linux/arm/v6", "linux/arm/v8", False),
    ("linux/arm/v6", "linux/arm64", False),
    ("linux/arm/v6", "windows/amd64", False),
    ("linux/arm/v6", "windows/arm", False),
    ("linux/arm/v5", "linux/arm/v5", True),
    ("linux/arm/v5", "linux/amd64", False),
    ("linux/arm/v5", "linux/arm", False),
    ("linux/arm/v5", "linux/arm/v4", False),
    ("linux/arm/v5", "linux/arm/v6", False),
    ("linux/arm/v5", "linux/arm/v7", False),
    ("linux/arm/v5", "linux/arm/v8", False),
    ("linux/arm/v5", "linux/arm64", False),
    ("linux/arm/v5", "windows/amd64", False),
    ("linux/arm/v5", "windows/arm", False),
    ("linux/arm/v4", "linux/arm/v4", True),
    ("linux/arm/v4", "linux/amd64", False),
    ("linux/arm/v4", "linux/arm", False),
    ("linux/arm/v4", "linux/arm/v5", False),
    ("linux/arm/v4", "linux/arm/v6", False),
    ("linux/arm/v4", "linux/arm/v7", False),
    ("linux/arm/v4", "linux/arm/v8", False),
    ("linux/arm/v4", "linux/arm64", False),
    ("linux/arm/v4", "windows/amd64", False),
    ("linux/arm/v4", "windows/arm", False),
    ("linux/arm64/v9.6", "linux/arm", True),
    ("linux/arm64/v9.6", "linux/arm/v5", True),
    ("linux/arm64/v9.6", "linux/arm/v6", True),
    ("linux/arm64/v9.6", "linux/arm/v7", True),
    ("linux/arm64/v9.6", "linux/arm/v8", True),
    ("linux/arm64/v9.6", "linux/arm64", True),
    ("linux/arm64/v9.6", "linux/arm64/v8", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.1", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.2", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.3", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.4", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.5", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.6", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.7", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.8", True),
    ("linux/arm64/v9.6", "linux/arm64/v8.9", True),
    ("linux/arm64/v9.6", "linux/arm64/v9", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.0", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.1", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.2", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.3", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.4", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.5", True),
    ("linux/arm64/v9.6", "linux/arm64/v9.6", True),
    ("linux/arm64/v9.6", "linux/amd64", False),
    ("linux/arm64/v9.6", "linux/arm/v4", False),
    ("linux/arm64/v9.6", "windows/amd64", False),
    ("linux/arm64/v9.6", "windows/arm", False),
    ("linux/arm64/v9.6", "linux/arm64/v8.10", False),
    ("linux/arm64/v9", "linux/arm", True),
    ("linux/arm64/v9", "linux/arm/v5", True),
    ("linux/arm64/v9", "linux/arm/v6", True),
    ("linux/arm64/v9", "linux/arm/v7", True),
    ("linux/arm64/v9", "linux/arm/v8", True),
    ("linux/arm64/v9", "linux/arm64", True),
    ("linux/arm64/v9", "linux/arm64/v8", True),
    ("linux/arm64/v9", "linux/arm64/v8.1", True),
    ("linux/arm64/v9", "linux/arm64/v8.2", True),
    ("linux/arm64/v9", "linux/arm64/v8.3", True),
    ("linux/arm64/v9", "linux/arm64/v8.4", True),
    ("linux/arm64/v9", "linux/arm64/v8.5", True),
    ("linux/arm64/v9", "linux/arm64/v9", True),
    ("linux/arm64/v9", "linux/arm64/v9.0", True),
    ("linux/arm64/v9", "linux/amd64", False),
    ("linux/arm64/v9", "linux/arm/v4", False),
    ("linux/arm64/v9", "windows/amd64", False),
    ("linux/arm64/v9", "windows/arm", False),
    ("linux/arm64/v9", "linux/arm64/v8.6", False),
    ("linux/arm64/v8.1", "linux/arm", True),
    ("linux/arm64/v8.1", "linux/arm/v5", True),
    ("linux/arm64/v8.1", "linux/arm/v6", True),
    ("linux/arm64/v8.1", "linux/arm/v7", True),
    ("linux/arm64/v8.1", "linux/arm/v8", True),
    ("linux/arm64/v8.1", "linux/arm64", True),
    ("linux/arm64/v8.1", "linux/arm64/v8", True),
    ("linux/arm64/v8.1", "linux/arm64/v8.1", True),
    ("linux/arm64/v8.1", "linux/amd64", False),
    ("linux/arm64/v8.1", "linux/arm/v4", False),
    ("linux/arm64/v8.1", "linux/arm/v9", False),
    ("linux/arm64/v8.1", "linux/arm64/v9", False),
    ("linux/arm64/v8.1", "windows/amd64", False),
    ("linux/arm64/v8.1", "windows/arm", False),
    ("linux/arm64", "linux/arm", True),
    ("linux/arm64", "linux/arm/v5", True),
    ("linux/arm64", "linux/arm/v6", True),
    ("linux/arm64", "linux/arm/v7", True),
    ("linux/arm64", "linux/arm/v8", True),
    ("linux/arm64", "linux/arm64", True),
    ("linux/arm64", "linux/arm64/v8", True),
    ("linux/arm64", "linux/amd64", False),
    ("linux/arm64", "linux/arm/v4", False),
    ("linux/arm64", "linux/arm/v9", False),
    ("linux/arm64", "linux/arm64/v9", False),
    ("linux/arm64", "windows/amd64", False),
    ("linux/arm64", "windows/arm", False),
]


@pytest.mark.parametrize("host, image, runs", COMPARE_TABLE)
def test_which_host_runs_which_image_agrees_with_containerd(host: str, image: str, runs: bool) -> None:
    assert can_run(parse(host), parse(image)) is runs


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # the plan of a local build: one node takes every platform
def test_a_platform_resolve_accepts_never_crashes_a_build_plan() -> None:
    import subprocess
    import sys

    from .conftest import REPO

    text = "linux/amd64,windows(10.0.17763%2Bbuild.42)/amd64"
    result = subprocess.run([sys.executable, "-m", "orchestrator", "build", "-f", "Dockerfile.example", "--platform",
                             text, "-t", "localhost:5000/x/y:1", "--dry-run", "--json"], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    import json

    assert json.loads(result.stdout)["platforms"][0] == "linux/amd64"
