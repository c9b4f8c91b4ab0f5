import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.errors import BadInput
from orchestrator.model.platform import format_platform
from orchestrator.profiles import ProfileError, available, json_schema, load
from orchestrator.tags.gitinfo import render_tags

from . import orch_processes
from .conftest import REPO

runner = CliRunner()
BUNDLED = ["all", "arm-all", "common", "pi"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def orch(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_profile_validates(name: str) -> None:
    profile = load(name)
    assert profile.platforms, name


def test_arm_all_and_common_have_the_documented_platforms() -> None:
    assert [format_platform(p) for p in load("arm-all").platforms] == ["linux/arm/v6", "linux/arm/v7", "linux/arm64"]
    assert [format_platform(p) for p in load("common").platforms] == ["linux/amd64", "linux/arm64"]
    # pi is written with official-image prefixes and means the same platforms.
    assert load("pi").platforms == load("arm-all").platforms


# text of a broken profile, line number expected, words the message must contain
BROKEN = [
    ("platforms: [linux/arm64]\nplatfroms: []\n", 2, ['unknown key "platfroms"', "did you mean platforms"]),
    ("platforms:\n  - linux/arm64\n  - linux/armv9\n", 3, ['platforms[1]', '"linux/armv9"', "did you mean"]),
    ("platforms: linux/arm64\nstrategy: per_arch\n", 2, ['"per_arch" is not one of', "did you mean per-arch"]),
    ("builder:\n  name: b\n  driver: docker-containr\n", 3, ["builder.driver", "did you mean docker-container"]),
    ("builder:\n  nodes:\n    - name: pi\n      platforms: [arm64]\n", 3,
     ['builder.nodes[0]', 'give exactly one of "endpoint" or "builder"']),
    ("builder:\n  nodes:\n    - endpoint: pi\n      platform: [arm64]\n", 4, ['unknown key "platform"']),
    ("build_args:\n  A: [1, 2]\n", 2, ["build_args.A", "expected a plain value"]),
    ("tags: ['repo:{verison}']\n", 1, ['unknown placeholder "{verison}"', "did you mean version"]),
    ("platforms: [arm64]\ncache_to: [type=registry,ref=r:cache]\n", 2,
     ['cache_to[1]', '"ref=r:cache" has no type=', 'quote the whole value']),
    ("attestations:\n  provenance: maximal\n", 2, ['"maximal" is not a provenance setting']),
    ("install_emulators: yes please\n", 1, ["expected true or false"]),
    ("platforms: [linux/arm64]\nplatforms: [linux/amd64]\n", 2, ['duplicate key "platforms"']),
    ("- linux/arm64\n- linux/amd64\n", 1, ["must be a mapping", "got a list"]),
    ("platforms: [linux/arm64\n", 2, ["malformed YAML"]),
    ("a: &x {b: 1}\n<<: *x\n", 2, ["merge keys", "extends"]),
    ("builder:\n  name: default\n  driver: docker-container\n", 2, ['"default" is the daemon']),
]


@pytest.mark.parametrize("text, line, words", BROKEN)
def test_broken_profiles_say_file_line_key_and_fix(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(ProfileError) as caught:
        load(str(path))
    message = str(caught.value)
    assert caught.value.line == line, message
    assert f"broken.yaml:{line}:" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "content, says",
    [
        ("", "the profile is empty"),
        ("# only a comment\n", "the profile is empty"),
        ("x" * (2 << 20), "a profile may be at most"),
        ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
         'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'
         'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n', "expands to more than"),
        pytest.param("[" * 5000 + "]" * 5000, "", marks=pytest.mark.slow),  # PyYAML's parser takes ~2 s to refuse it
        (b"\xff\xfe platforms".decode("latin-1"), ""),
    ],
    ids=["empty", "comment-only", "10MB", "yaml-bomb", "deep-nesting", "binary-ish"],
)
def test_hostile_files_fail_cleanly_with_exit_2(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(content, encoding="utf-8" if not content.startswith("\xff") else "latin-1")
    result = orch("profiles", "validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "hostile.yaml" in result.stderr
    assert says in result.stderr


def test_extends_merges_field_by_field(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "platforms: [linux/amd64]\nbuild_args: {A: '1', B: '2'}\n"
                                 "tags: ['r/x:{version}']\nbuilder: {name: b1, driver_opts: {network: host}}\n")
    write(tmp_path, "child.yaml", "extends: base.yaml\nbuild_args: {B: three, C: true}\n"
                                  "builder: {driver_opts: {memory: 1g}}\n")
    profile = load(str(tmp_path / "child.yaml"))
    assert profile.build_args == {"A": "1", "B": "three", "C": "true"}
    assert profile.tags == ("r/x:{version}",)
    assert [format_platform(p) for p in profile.platforms] == ["linux/amd64"]
    assert profile.builder.name == "b1"
    assert profile.builder.driver_opts == {"network": "host", "memory": "1g"}
    assert profile.sources[-1].endswith("child.yaml")


def test_empty_list_clears_an_inherited_one_but_unset_inherits(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "platforms: [linux/amd64]\ncache_from: ['type=registry,ref=r/x:cache']\n")
    write(tmp_path, "child.yaml", "extends: base.yaml\ncache_from: []\n")
    profile = load(str(tmp_path / "child.yaml"))
    assert profile.cache_from == ()
    assert profile.platforms is not None


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: b.yaml\nplatforms: [linux/amd64]\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(BadInput, match="extends itself: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load(str(tmp_path / "a.yaml"))


def test_extends_of_an_unknown_profile_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: arm-al\n")
    with pytest.raises(ProfileError, match=r'a.yaml: extends: unknown profile "arm-al" \(did you mean arm-all\?\)'):
        load(str(tmp_path / "a.yaml"))


def test_user_directory_overrides_bundled_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    write(user, "arm-all.yaml", "description: my own\nplatforms: [linux/arm64]\n")
    monkeypatch.setenv("ORCH_PROFILE_PATH", str(user))
    assert load("arm-all").description == "my own"
    assert set(BUNDLED) <= set(available())


def test_profile_works_from_any_directory(tmp_path: Path) -> None:
    result = orch("profiles", "show", "arm-all", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["platforms"] == ["linux/arm/v6", "linux/arm/v7", "linux/arm64"]


def test_unknown_profile_exits_2_with_the_choices() -> None:
    result = orch("profiles", "show", "arm-al")
    assert result.returncode == 2
    assert 'unknown profile "arm-al" (did you mean arm-all?)' in result.stderr
    assert "available: all, arm-all, common, pi" in result.stderr


def test_profiles_list_and_show_json() -> None:
    result = runner.invoke(app, ["profiles", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in json.loads(result.output)] == BUNDLED
    result = runner.invoke(app, ["profiles", "show", "pi", "--json"])
    assert json.loads(result.output)["sources"] == ["profiles/arm-all.yaml", "profiles/pi.yaml"]


def test_schema_describes_every_field_and_rejects_unknown_keys() -> None:
    result = runner.invoke(app, ["profiles", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema == json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["strategy"]["enum"] == ["auto", "single", "per-arch"]
    assert schema["properties"]["builder"]["properties"]["nodes"]["items"]["oneOf"] == [
        {"required": ["endpoint"]}, {"required": ["builder"]}]


def test_render_tags_fills_templates_and_refuses_unknown_values() -> None:
    assert render_tags(("r/x:{version}", "r/x:{short_sha}-{date}"),
                       {"version": "1.2.0", "short_sha": "abc1234", "date": "20261123"}) == [
        "r/x:1.2.0", "r/x:abc1234-20261123"]
    with pytest.raises(BadInput, match=r"needs \{version\}"):
        render_tags(("r/x:{version}",), {"version": None})


@pytest.mark.slow
def test_wheel_ships_the_bundled_profiles(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("orch_multiarch-*.whl"))  # the distribution is orch-multiarch
    names = zipfile.ZipFile(wheel).namelist()
    for profile in BUNDLED:
        assert f"orchestrator/bundled_profiles/{profile}.yaml" in names


def test_an_edited_profile_is_read_again_and_an_unchanged_one_without_yaml(tmp_path: Path) -> None:
    """Parsed profiles are kept in the state directory by path, size and mtime."""
    import os
    import subprocess
    import sys

    profile = tmp_path / "p.yaml"
    profile.write_text("platforms: [arm64]\n")
    code = ("import sys; from orchestrator.profiles import load; "
            "print([str(p) for p in load(sys.argv[1]).platforms], 'yaml' in sys.modules)")

    def read() -> str:
        return subprocess.run([sys.executable, "-c", code, str(profile)], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert read() == "['linux/arm64'] True"  # parsed
    assert read() == "['linux/arm64'] False"  # from the cache: PyYAML never imported
    profile.write_text("platforms: [arm64, armhf]\n")
    os.utime(profile, ns=(profile.stat().st_atime_ns, profile.stat().st_mtime_ns + 1_000_000))
    assert read() == "['linux/arm64', 'linux/arm/v7'] True"  # changed: parsed again
