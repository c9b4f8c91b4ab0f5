"""Tag rules as docker/metadata-action makes them: its own test cases (inputs and expected tags,
tests/data/metadata-action/cases.json) run through orch's rules, plus orch's errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.errors import BadInput
from orchestrator.model.tagrules import RefContext, TagRules, image_names, parse_flavor, parse_rule, tags_for
from orchestrator.model.tagtemplates import format_date, parse_semver, render
from orchestrator.tags.gitinfo import github_context

DATA = json.loads((Path(__file__).parent / "data" / "metadata-action" / "cases.json").read_text())
NOW = datetime(2020, 1, 10, 0, 30, tzinfo=timezone.utc)
PEP440 = "orch refuses type=pep440 (Python version tags) with exit 2 instead of tagging"


# The peer's groups whose cases give a version and tags (the others test its other outputs).
TAG_GROUPS = ("null", "push", "tag", "latest", "pr", "pr-head-sha", "schedule", "release", "raw")


def _expected_version(case: dict) -> dict:
    return case["expected"].get("version") or case["expected"]


def _cases() -> list:
    out = []
    for case in (c for c in DATA["cases"] if c["group"] in TAG_GROUPS):
        reason = PEP440 if any("type=pep440" in t for t in case["tags"]) else None
        out.append(pytest.param(case, reason, id=f"{case['group']}/{case['name']}"))
    return out


@pytest.mark.parametrize(("case", "reason"), _cases())
def test_metadata_actions_own_cases(case: dict, reason: str | None) -> None:
    context = replace(github_context(case["environment"], case["payload"], default_branch=DATA["default_branch"],
                                     now=NOW), commit_date=NOW)  # the peer's tests fix every date to NOW
    if reason == PEP440:
        with pytest.raises(BadInput, match="type=pep440 is not supported"):
            TagRules(case["tags"], parse_flavor(case["flavor"])).version(context)
        return
    rules = TagRules(case["tags"], parse_flavor(case["flavor"]))
    version = rules.version(context)
    expected = case["expected"]
    wanted = _expected_version(case)
    assert (version.main, version.partial, version.latest) == (wanted["main"], wanted["partial"], wanted["latest"])
    assert tags_for(image_names(case["images"]), rules.tag_names(version)) == expected["tags"]


# The peer's describe groups at the recorded commit and how many cases each holds, counted in its
# __tests__/meta.test.ts: the carried data must be these, whole (scripts/carry-metadata-action.py
# carried the last five).
PEER_GROUPS = {"null": 2, "push": 22, "tag": 35, "latest": 10, "pr": 12, "pr-head-sha": 12, "schedule": 8,
               "release": 3, "raw": 10, "json": 7, "bakeFile": 7, "bakeFileTagsLabels": 1, "sepTags": 2}


def test_every_case_of_the_peers_groups_is_carried() -> None:
    carried: dict[str, int] = {}
    for case in DATA["cases"]:
        carried[case["group"]] = carried.get(case["group"], 0) + 1
    assert carried == PEER_GROUPS
    refused = [case["name"] for case in DATA["cases"] if any("type=pep440" in t for t in case["tags"])]
    assert len(refused) == 13  # the peer's pep440 cases; orch refuses that rule type
    assert set(DATA["carried"].values()) == {"dc802804100637a589fabce1cb79ff13a1411302"}


# Where orch's labels differ from metadata-action's on the same facts, key by key, and why. The
# test below fails on any other difference, and on a listed one that no longer occurs.
LABEL_DIFFERENCES = {
    "org.opencontainers.image.description": "from the GitHub API (repository description), which orch does not call",
    "org.opencontainers.image.licenses": "from the GitHub API (repository license), which orch does not call",
    "org.opencontainers.image.created": "orch writes whole seconds (2020-01-10T00:30:00Z), the peer milliseconds",
    "org.opencontainers.image.revision": "empty on events without a commit: the peer writes the key empty, orch leaves it out",
    "org.opencontainers.image.version": "no version: the peer writes the key empty, orch leaves it out",
}
# Outputs of the peer that orch gives otherwise, and why (the cases still check what is comparable).
OUTPUT_DIFFERENCES = {
    "annotations": "the peer lists the OCI keys again as annotations (to apply if the workflow asks); orch's "
                   "`annotations` output lists what it put on the index and manifests: the rules' and --annotation's",
    "bake file": "orch writes no bake file: it builds and publishes itself; it reads the peer's (--meta FILE), "
                 "which the bakeFile cases check",
    "sep-tags": "orch has no separator input: `tags` is one per line (GitHub), space-separated in ORCH_TAGS (dotenv)",
}


def _orch_labels(case: dict, version: str | None) -> dict[str, str]:
    """The labels orch sets on the case's facts, its label lines read as orch reads --label."""
    import tempfile

    from orchestrator.tags.gitinfo import oci_labels
    from orchestrator.tags.tagging import label_lines

    api = DATA["repository_api"]  # orch reads the repository from GITHUB_REPOSITORY, the peer from the API
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as event:
        json.dump(case["payload"], event)
    environ = {**case["environment"], "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": api["full_name"],
               "GITHUB_EVENT_PATH": event.name}
    context = replace(github_context(case["environment"], case["payload"], default_branch=DATA["default_branch"],
                                     now=NOW), commit_date=NOW)  # the peer's tests fix every date to NOW
    try:
        return {**oci_labels(None, NOW, version=version, environ=environ),
                **label_lines(case.get("labels") or [], context)[0]}
    finally:
        Path(event.name).unlink()


def _orch_version_and_tags(case: dict) -> tuple[str | None, list[str]]:
    context = replace(github_context(case["environment"], case["payload"], default_branch=DATA["default_branch"],
                                     now=NOW), commit_date=NOW)
    rules = TagRules(case["tags"], parse_flavor(case["flavor"]))
    version = rules.version(context)
    return version.main, tags_for(image_names(case["images"]), rules.tag_names(version))


# Each listed difference, as it shows: anything else on a listed key is a difference not listed.
EXPECTED_SHAPE = {
    "org.opencontainers.image.description": lambda ours, theirs: ours is None,
    "org.opencontainers.image.licenses": lambda ours, theirs: ours is None,
    "org.opencontainers.image.created": lambda ours, theirs: theirs == (ours or "").replace("Z", ".000Z"),
    "org.opencontainers.image.revision": lambda ours, theirs: ours is None and theirs == "",
    "org.opencontainers.image.version": lambda ours, theirs: ours is None and theirs == "",
}


def _differences(ours: dict[str, str], theirs: dict[str, str], name: str, seen: dict[str, list[str]]) -> None:
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            shape = EXPECTED_SHAPE.get(key)
            listed = key if shape is not None and shape(ours.get(key), theirs.get(key)) else f"{key} (unlisted)"
            seen.setdefault(listed, []).append(f"{name}: orch {ours.get(key)!r}, peer {theirs.get(key)!r}")


def test_labels_agree_with_the_peers_except_where_listed() -> None:
    seen: dict[str, list[str]] = {}
    for case in DATA["cases"]:
        if any("type=pep440" in t for t in case["tags"]) or case["group"] not in (*TAG_GROUPS, "json"):
            continue
        main, _ = _orch_version_and_tags(case)
        theirs = case["expected"]["json"]["labels"] if case["group"] == "json" else \
            dict(line.split("=", 1) for line in case["expected"]["labels"])
        _differences(_orch_labels(case, main), theirs, case["name"], seen)
    unlisted = {key: cases[:3] for key, cases in seen.items() if key not in LABEL_DIFFERENCES}
    assert unlisted == {}, unlisted
    assert sorted(seen) == sorted(LABEL_DIFFERENCES), "a listed difference no longer occurs: take it off the list"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("type=semver", "has no pattern="),
        ("type=ref", "has no event="),
        ("type=ref,event=push", "event must be branch, tag or pr"),
        ("type=sha,format=medium", "format must be short or long"),
        ("type=nightly", 'unknown type "nightly"'),
        ("type=raw,value=x,priority=high", 'priority "high" is not a number'),
    ],
)
def test_bad_rules_say_what_is_wrong(line: str, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        parse_rule(line)


def test_templates_dates_and_versions() -> None:
    assert render("{{ branch }}-{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", {
        "branch": "main", "date": RefContext(now=NOW).values()["date"]}) == "main-20200110-093000"
    assert format_date(NOW, None) == "2020-01-10T00:30:00Z"
    assert format_date(NOW, "[week] YYYY") == "week 2020"
    assert parse_semver("v1.2.3-rc.2+build.5").version == "1.2.3-rc.2"
    assert parse_semver("1.2") is None and parse_semver("1.2.3rc2") is None and parse_semver("01.2.3") is None


def _cases_of(group: str) -> list:
    return [pytest.param(case, id=case["name"]) for case in DATA["cases"] if case["group"] == group]


@pytest.mark.parametrize("case", _cases_of("json"))
def test_the_json_output_has_the_peers_tags_and_labels(case: dict) -> None:
    """orch's `json` output (report.ci_outputs.build_values) on the case's facts: tags, tag-names and
    labels as the peer's (labels apart from LABEL_DIFFERENCES, checked above)."""
    from orchestrator.report.ci_outputs import build_values

    main, tags = _orch_version_and_tags(case)
    ours = json.loads(build_values({"tags": tags, "labels": _orch_labels(case, main), "digest": None})["json"])
    theirs = case["expected"]["json"]
    assert (ours["tags"], ours["tag-names"]) == (theirs["tags"], theirs["tag-names"])
    comparable = {k for k in theirs["labels"] if k not in LABEL_DIFFERENCES}
    assert {k: ours["labels"].get(k) for k in comparable} == {k: theirs["labels"][k] for k in comparable}
    assert "annotations" in OUTPUT_DIFFERENCES  # the peer's annotations are its labels again: not orch's


@pytest.mark.parametrize("case", _cases_of("bakeFile") + _cases_of("bakeFileTagsLabels"))
def test_the_peers_bake_files_agree_with_orchs_rules_and_read_back_whole(case: dict, tmp_path: Path) -> None:
    """Its bake files hold the tags, version and images orch's rules give; orch's --meta reader
    takes each back whole."""
    from orchestrator.tags.tagging import read_metadata_action

    main, tags = _orch_version_and_tags(case)
    files = [case["expected"][k] for k in ("bake", "bake_tags", "bake_labels", "bake_annotations")
             if k in case["expected"]]
    for document in files:
        (target,) = document["target"].values()
        path = tmp_path / "bake.json"
        path.write_text(json.dumps(document))
        read = read_metadata_action(str(path))
        assert list(read.tags) == target.get("tags", [])
        assert read.labels == target.get("labels", {})
        assert read.annotations == dict(line.partition("=")[::2] for line in target.get("annotations", []))
        if "tags" in target:
            assert target["tags"] == tags
            assert target["args"]["DOCKER_META_VERSION"] == main
            assert target["args"]["DOCKER_META_IMAGES"] == ",".join(image_names(case["images"]))
        if "labels" in target:
            comparable = {k for k in target["labels"] if k not in LABEL_DIFFERENCES}
            ours = _orch_labels(case, main)
            assert {k: ours.get(k) for k in comparable} == {k: target["labels"][k] for k in comparable}


@pytest.mark.parametrize("case", _cases_of("sepTags"))
def test_tags_joined_as_the_peers_sep_tags_joins_them(case: dict) -> None:
    _, tags = _orch_version_and_tags(case)
    assert case["inputs"]["sepTags"].join(tags) == case["expected"]["joined"]
    assert "sep-tags" in OUTPUT_DIFFERENCES
