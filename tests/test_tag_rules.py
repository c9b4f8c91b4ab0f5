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
from orchestrator.publish.gitinfo import github_context

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


def test_every_case_of_the_peer_is_carried() -> None:
    assert len(DATA["cases"]) == 102
    carried = sum(1 for case in DATA["cases"] if not any("type=pep440" in t for t in case["tags"]))
    assert carried >= 80  # the rest are pep440 cases, refused on purpose


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
