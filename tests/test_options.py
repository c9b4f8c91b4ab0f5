"""Options defined once (cli/options.py): every command that takes a group declares exactly its
options, as the group defines them, and the fast paths of `orch verify` and `orch release` parse
what their Typer commands parse, to the same values."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.builds.options import SigningOptions
from orchestrator.cli import fast, options, release_run, verify_run
from orchestrator.cli.app import app
from orchestrator.cli.options import GROUPS, RELEASE, VERIFY, Option, flat

# Which commands take which group: a command that signs takes the whole signing group, and so on.
TAKES = {
    "tags": {"build", "release"},
    "builder": {"build"},
    "outputs": {"build", "release"},
    "verification": {"build", "release", "manifest create", "verify"},
    "signing": {"build", "release", "manifest create"},
}
# The same name, another meaning: `orch init --image` is the repository its generated files name.
OTHER_MEANING = {("init", "--image"), ("init", "--sign"),  # init --sign: how the CI files it writes sign
                 ("verify", "--builder")}  # verify: the builder --reproduce rebuilds on


# typer may bring a click of its own (typer._click): commands and options are told by their shape.
def _commands(command: Any, path: str = "") -> dict[str, Any]:
    if hasattr(command, "commands"):
        found: dict[str, Any] = {}
        for name, sub in command.commands.items():
            found.update(_commands(sub, f"{path} {name}".strip()))
        return found
    return {path: command}


COMMANDS = _commands(typer.main.get_command(app))


def _options(command: Any) -> list[Any]:
    return [param for param in command.params if param.param_type_name == "option" and param.name != "help"]


def _names(command: Any) -> dict[str, Any]:
    """Each name an option of `command` answers to (its --no- form too), but --help."""
    return {name: param for param in _options(command)
            for name in (*param.opts, *param.secondary_opts) if name not in ("--help", "-h")}


def _declared_as(param: Any, option: Option) -> None:
    assert param.name == option.key
    assert (param.opts, param.secondary_opts) == (list(option.names), [option.negative] if option.negative else [])
    assert (param.help, param.envvar, param.metavar) == (option.help, option.envvar, option.metavar)
    default = tuple(param.default or ()) if option.kind == "list" else param.default
    assert default == option.initial, option.key
    assert param.multiple is (option.kind == "list") and param.is_flag is (option.kind in ("flag", "switch"))


def test_each_group_names_exactly_the_fields_of_its_dataclass() -> None:
    for group in GROUPS:
        assert [o.attribute for o in group.options] == [f.name for f in dataclasses.fields(group.make)], group.name


@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group.name)
def test_every_command_taking_a_group_has_exactly_its_options(group: options.Group) -> None:
    taking = set()
    for path, command in COMMANDS.items():
        names = _names(command)
        present = [option for option in group.options
                   if option.names[0] in names and (path, option.names[0]) not in OTHER_MEANING]
        if not present:
            continue
        taking.add(path)
        assert present == list(group.options), f"orch {path} takes part of the {group.name} group"
        for option in group.options:
            _declared_as(names[option.names[0]], option)
    assert taking == TAKES[group.name]


@pytest.mark.parametrize(("path", "items"), [("release", RELEASE), ("verify", VERIFY)])
def test_the_fast_path_knows_exactly_the_options_of_the_typer_command(path: str, items: tuple[Any, ...]) -> None:
    typed = _names(COMMANDS[path])
    table = fast.table(items)
    assert set(table) == set(typed)
    for name, (option, _value) in table.items():
        _declared_as(typed[name], option)
    assert [p.name for p in _options(COMMANDS[path])] == [option.key for option in flat(items)]  # and in the order --help lists them


RELEASE_ARGV = [
    ["release", "parts"],
    ["-q", "release", "parts", "more", "--profile", "svc", "-t", "r/a:1", "--tag=r/a:2", "--deep", "--json",
     "--output-env", "release.env"],
    ["release", "parts", "-p", "svc", "--platform", "linux/arm64", "--platform=linux/amd64", "--tag-rule",
     "type=semver,pattern={{version}}", "--image", "r/a", "--image", "r/b", "--flavor", "latest=false", "--dry-run",
     "--report", "r.html", "--metadata-file", "m.json", "--sign", "--sign-key", "cosign.key", "--no-tlog",
     "--sign-recursive"],
    ["release", "parts", "--sign", "--tlog"],  # the key from $ORCH_SIGN_KEY
]
VERIFY_ARGV = [
    ["verify", "r.io/a:1", "-p", "arm-all"],
    ["verify", "--json", "r.io/a:1", "--platform=arm64", "--platform", "armhf", "--strict", "--config-mismatch",
     "warn", "--allow-duplicates", "--deep"],
    ["verify", "r.io/a:1", "--platform", "arm64", "--key", "cosign.pub", "--require-attestations", "sbom,provenance",
     "--certificate-identity", "https://ci/wf", "--certificate-oidc-issuer", "https://issuer"],
]


def _through_typer(monkeypatch: pytest.MonkeyPatch, module: Any, core: str, argv: list[str]) -> Any:
    """What the Typer command hands its core for `argv` (the core itself replaced)."""
    seen: list[Any] = []
    monkeypatch.setattr(module, core, lambda args: seen.append(args) or 0)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("argv", RELEASE_ARGV)
def test_the_fast_path_and_typer_parse_release_alike(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setenv("ORCH_SIGN_KEY", "from-env.key")
    taken = fast.release_args(list(argv))
    assert taken is not None
    assert taken[0] == _through_typer(monkeypatch, release_run, "run_release_parts", argv)


@pytest.mark.parametrize("argv", VERIFY_ARGV)
def test_the_fast_path_and_typer_parse_verify_alike(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    taken = fast.verify_args(list(argv))
    assert taken is not None
    assert taken == _through_typer(monkeypatch, verify_run, "run_verify", argv)


def test_the_parsed_values_reach_the_nested_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SIGN_KEY", "from-env.key")
    args = fast.release_args(list(RELEASE_ARGV[2]))[0]  # type: ignore[index]
    assert (args.platforms, args.tags.rules, args.tags.images, args.tags.flavor, args.dry_run) == (
        ("linux/arm64", "linux/amd64"), ("type=semver,pattern={{version}}",), ("r/a", "r/b"), ("latest=false",), True)
    assert (args.outputs.report, args.outputs.metadata_file, args.outputs.output_env) == ("r.html", "m.json", None)
    assert args.signing == SigningOptions(sign=True, key="cosign.key", tlog=False, recursive=True)
    assert fast.release_args(list(RELEASE_ARGV[3]))[0].signing.key == "from-env.key"  # type: ignore[index]
    verify = fast.verify_args(list(VERIFY_ARGV[2]))
    assert verify is not None and (verify.identity, verify.issuer, verify.config_mismatch) == (
        "https://ci/wf", "https://issuer", "fail")


BUILD_ARGV = [
    ["build", "--push", "-t", "r/a:1"],
    ["-q", "build", "ctx", "--profile", "svc", "-f", "Dockerfile.x", "--platform", "linux/arm64", "--platform=amd64",
     "--build-arg", "A=1", "--build-arg", "B=2", "--secret", "id=s,env=S", "--push", "--tag=r/a:2", "--image", "r/a",
     "--tag-rule", "type=semver,pattern={{version}}", "--flavor", "latest=false", "--builder", "farm",
     "--no-install-emulators", "--strategy", "per-arch", "--merge", "manifest", "-j", "3", "--no-cache", "--json",
     "--metadata-file", "m.json", "--report", "r.html", "--output-env", "o.env", "--progress", "plain", "--deep",
     "--label", "k=v", "--annotation", "index:a=b", "--cache-from", "type=registry,ref=r/c", "--cache-to",
     "type=inline", "--cache", "r/cache", "--build-context", "base=../base", "--provenance", "mode=max", "--no-sbom",
     "--sign", "--sign-key", "cosign.key", "--tlog", "--sign-recursive", "--reproducible", "--target", "app",
     "--pull", "--ssh", "default", "--network", "host", "--meta", "env"],
    ["-v", "--log-format", "json", "build", "--dry-run", "--oci-layout", "out", "--sbom", "--part", "parts",
     "--install-emulators"],
]


@pytest.mark.parametrize("argv", BUILD_ARGV)
def test_the_fast_path_and_typer_parse_build_alike(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """The same BuildRequest, run the same way, from the fast path as from the Typer command."""
    from orchestrator.cli import build_run

    monkeypatch.setenv("ORCH_SIGN_KEY", "from-env.key")
    taken = fast.build_args(list(argv))
    assert taken is not None
    given, buildx, flags, _log_format = taken
    seen: list[Any] = []
    monkeypatch.setattr(build_run, "run_build", lambda flags, request, **how: seen.append((flags, request, how)))
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    typed_flags, typed_request, typed_how = seen[0]
    assert build_run.build_request(given, buildx) == typed_request
    assert flags == typed_flags
    assert {"dry_run": given["dry_run"], "as_json": given["as_json"], "progress": given["progress"]} == typed_how


def test_the_fast_path_knows_exactly_the_options_of_orch_build() -> None:
    typed = _names(COMMANDS["build"])
    table = fast.table(options.BUILD)
    assert set(table) == set(typed)
    for name, (option, _value) in table.items():
        _declared_as(typed[name], option)
    assert [p.name for p in _options(COMMANDS["build"])] == [option.key for option in flat(options.BUILD)]


@pytest.mark.parametrize("argv", [["build", "--bake", "b.hcl"], ["build", "-j", "two"], ["build", "--help"],
                                  ["-q", "-v", "build"], ["build", "--nope"],
                                  ["--log-format", "xml", "build"]])
def test_what_the_fast_path_leaves_to_typer(argv: list[str]) -> None:
    assert fast.build_args(list(argv)) is None
