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


def _cases() -> list:
    out = []
    for case in DATA["cases"]:
        reason = PEP440 if any("type=pep440" in t for t in case["tags"]) else None
        out.append(pytest.param(case, reason, id=case["name"]))
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
    assert (version.main, version.partial, version.latest) == (expected["main"], expected["partial"],
                                                               expected["latest"])
    assert tags_for(image_names(case["images"]), rules.tag_names(version)) == expected["tags"]


# The peer's describe groups at the recorded commit and how many cases each holds, counted in its
# __tests__/meta.test.ts: the carried data must be these, whole (pr-head-sha, json, bakeFile,
# bakeFileTagsLabels and sepTags test other outputs and are not carried yet).
PEER_GROUPS = {"null": 2, "push": 22, "tag": 35, "latest": 10, "pr": 12, "schedule": 8, "release": 3, "raw": 10}


def test_every_case_of_the_peers_groups_is_carried() -> None:
    carried: dict[str, int] = {}
    for case in DATA["cases"]:
        carried[case["group"]] = carried.get(case["group"], 0) + 1
    assert carried == PEER_GROUPS
    refused = [case["name"] for case in DATA["cases"] if any("type=pep440" in t for t in case["tags"])]
    assert len(refused) == 13  # the peer's pep440 cases; orch refuses that rule type


# Where orch's labels differ from metadata-action's on the same facts, key by key, and why. The
# test below fails on any other difference, and on a listed one that no longer occurs.
LABEL_DIFFERENCES = {
    "org.opencontainers.image.description": "from the GitHub API (repository description), which orch does not call",
    "org.opencontainers.image.licenses": "from the GitHub API (repository license), which orch does not call",
    "org.opencontainers.image.created": "orch writes whole seconds (2020-01-10T00:30:00Z), the peer milliseconds",
    "org.opencontainers.image.revision": "empty on events without a commit: the peer writes the key empty, orch leaves it out",
    "org.opencontainers.image.version": "no version: the peer writes the key empty, orch leaves it out",
    "label lines": "the peer's `labels:` input (latest09, push21) is not given to orch here",
}


def _orch_labels(case: dict, version: str | None) -> dict[str, str]:
    from orchestrator.tags.gitinfo import oci_labels

    api = DATA["repository_api"]  # orch reads the repository from GITHUB_REPOSITORY, the peer from the API
    environ = {**case["environment"], "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": api["full_name"]}
    return oci_labels(None, NOW, version=version, environ=environ)


def test_labels_agree_with_the_peers_except_where_listed() -> None:
    seen: dict[str, list[str]] = {}
    for case in DATA["cases"]:
        if any("type=pep440" in t for t in case["tags"]):
            continue
        rules = TagRules(case["tags"], parse_flavor(case["flavor"]))
        context = replace(github_context(case["environment"], case["payload"], default_branch=DATA["default_branch"],
                                         now=NOW), commit_date=NOW)
        ours = _orch_labels(case, rules.version(context).main)
        theirs = dict(line.split("=", 1) for line in case["expected"]["labels"])
        if case.get("labels"):  # keys the user's label lines set are left out on both sides
            seen.setdefault("label lines", []).append(case["name"])
            given = {line.split("=", 1)[0] for line in case["labels"]}
            ours = {k: v for k, v in ours.items() if k not in given}
            theirs = {k: v for k, v in theirs.items() if k not in given}
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                seen.setdefault(key, []).append(f"{case['name']}: orch {ours.get(key)!r}, peer {theirs.get(key)!r}")
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
