"""The per-platform builds of a multi-node builder as one bake (builds.bake): each target says what
the job's `buildx build` says; what bake cannot be told the same way is built one process per
platform; bake's progress is shown and timed per platform as one-platform builds are."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.builds.argv import buildx_build_argv
from orchestrator.builds.bake import BakeLines, bake_file, bake_target
from orchestrator.builds.spec import BuildSpec, CacheEntry, Output
from orchestrator.builds.timings import step_log
from orchestrator.model.platform_parse import parse


def one_platform(tmp_path: Path, **changes: object) -> BuildSpec:
    spec = BuildSpec(
        platforms=(parse("linux/arm64"),), context="ctx", output=Output("registry", ("r.io/app",), push_by_digest=True),
        metadata_file=str(tmp_path / "m.json"), dockerfile="ctx/Dockerfile.x", build_args=(("A", "1"),),
        labels=(("org.opencontainers.image.revision", "abc"),), annotations=(("org.example.k", "v"),),
        annotation_levels=("manifest",), cache_from=(CacheEntry.parse("type=registry,ref=r.io/cache"),),
        cache_to=(CacheEntry.parse("type=registry,ref=r.io/cache-linux-arm64,mode=max"),),
        secrets=("id=npm,env=NPM_TOKEN",), build_contexts=(("base", "../base"),), provenance="mode=max", sbom=True,
        builder="farm", buildx=(("target", "app"), ("pull", True), ("ssh", ("default",))), no_cache=True)
    return replace(spec, **changes)


def test_a_target_says_what_the_build_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = one_platform(tmp_path)
    argv = buildx_build_argv(spec)
    target = bake_target(spec)
    assert target is not None
    assert target["platforms"] == ["linux/arm64"] and target["context"] == os.path.abspath("ctx")
    assert target["dockerfile"] == os.path.abspath("ctx/Dockerfile.x")  # buildx build reads -f from here
    assert target["contexts"] == {"base": os.path.abspath("../base")}
    assert target["args"] == {"A": "1"} and target["labels"] == {"org.opencontainers.image.revision": "abc"}
    assert target["annotations"] == ["manifest:org.example.k=v"] and "manifest:org.example.k=v" in argv
    assert target["cache-from"] == ["type=registry,ref=r.io/cache"]
    assert target["cache-to"] == ["type=registry,ref=r.io/cache-linux-arm64,mode=max"]
    assert target["secret"] == ["id=npm,env=NPM_TOKEN"]
    assert target["attest"] == ["type=provenance,mode=max", "type=sbom"]
    assert target["output"] == ["type=registry,name=r.io/app,push-by-digest=true"]
    assert target["output"][0] in argv and "--no-cache" in argv and target["no-cache"] is True
    assert (target["target"], target["pull"], target["ssh"]) == ("app", True, ["default"])


@pytest.mark.parametrize("change", [{"extra_args": ("--ulimit", "nofile=1:1")}, {"buildx": (("shm_size", "1g"),)},
                                    {"build_args": (("A", "${HOME}"),)}, {"context": "-"}])
def test_what_bake_cannot_be_told_the_same_is_built_one_process_per_platform(tmp_path: Path,
                                                                            change: dict[str, object]) -> None:
    assert bake_target(one_platform(tmp_path, **change)) is None
    assert bake_file([one_platform(tmp_path), one_platform(tmp_path, platforms=(parse("linux/amd64"),), **change)]) \
        is None


def test_provenance_and_sbom_off_and_remote_contexts_stay_as_they_are(tmp_path: Path) -> None:
    target = bake_target(one_platform(tmp_path, provenance="false", sbom=False, context="https://git.example/r.git",
                                      build_contexts=(("img", "docker-image://alpine:3"),)))
    assert target is not None
    assert target["attest"] == ["type=provenance,disabled=true", "type=sbom,disabled=true"]
    assert target["context"] == "https://git.example/r.git" and target["contexts"] == {"img": "docker-image://alpine:3"}


def test_each_step_of_bakes_progress_is_its_platforms() -> None:
    steps = {name: step_log((parse(label),)) for name, label in (("linux-amd64", "linux/amd64"),
                                                                  ("linux-arm64", "linux/arm64"))}
    lines = BakeLines(steps, {"linux-amd64": "[linux/amd64] ", "linux-arm64": "[linux/arm64] "})
    shown = [lines.feed(line) for line in (
        "#1 [internal] load local bake definitions", "#1 DONE 0.0s",
        "#8 [linux-arm64 2/2] RUN make", "#8 0.251 built", "#8 DONE 1.2s",
        "#9 [linux-amd64 internal] load build definition from Dockerfile", "#9 DONE 0.1s",
        "#12 [linux-amd64] exporting to image", "#12 DONE 0.3s")]
    assert shown == ["#1 [internal] load local bake definitions", "#1 DONE 0.0s",
                     "[linux/arm64] #8 [2/2] RUN make", "[linux/arm64] #8 0.251 built", "[linux/arm64] #8 DONE 1.2s",
                     "[linux/amd64] #9 [internal] load build definition from Dockerfile", "[linux/amd64] #9 DONE 0.1s",
                     "[linux/amd64] #12 exporting to image", "[linux/amd64] #12 DONE 0.3s"]
    assert [(s.platform, s.instruction) for s in steps["linux-arm64"].all()] == [("linux/arm64", "RUN make")]
    assert [s.instruction for s in steps["linux-amd64"].all()] == []


def test_every_field_of_a_build_is_one_bake_knows() -> None:
    """A field added to BuildSpec (and so to buildx build's words) must be told to bake too, or
    make bake_target give None: this names the fields bake_target was written for."""
    import dataclasses

    known = {"platforms", "context", "output", "metadata_file", "dockerfile", "buildx", "build_args", "labels",
             "annotations", "annotation_levels", "cache_from", "cache_to", "secrets", "build_contexts", "extra_args",
             "provenance", "sbom", "builder", "daemon", "no_cache", "progress", "rewrite_timestamp"}
    assert {field.name for field in dataclasses.fields(BuildSpec)} == known
