"""Tags as docker/metadata-action makes them, so a workflow moving to orch keeps its conventions.

Rules are metadata-action's lines (`type=semver,pattern={{major}}.{{minor}}`,
`type=ref,event=branch`, `type=sha`, `type=raw,value=...`, `type=edge`, `type=schedule`,
`type=match`), each with `enable=`, `priority=`, `prefix=`, `suffix=`; `flavor` lines set
`latest=auto|true|false` and a global prefix/suffix (`onlatest=true` applies them to `latest`).
Given where the build stands (a RefContext: the git ref, commit, event, default branch), the
rules give a main version, the other tags and whether `latest` goes with them; each image
gets all of them. metadata-action's own test cases run in tests/test_tag_rules.py.

orch reads `type=pep440` as an error (exit 2): Python version tags are not supported yet.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.tagtemplates import date_helper, is_raw_statement, parse_semver, render

TYPES = ("schedule", "semver", "match", "edge", "ref", "raw", "sha")
PRIORITIES = {"schedule": 1000, "semver": 900, "match": 800, "edge": 700, "ref": 600, "raw": 200, "sha": 100}
DEFAULT_RULES = ("type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr")
RULE_HELP = ("write metadata-action's rules, e.g. type=semver,pattern={{version}} or type=ref,event=branch "
             "or type=sha or type=raw,value=latest")
SHORT_SHA = 7


@dataclass(frozen=True)
class RefContext:
    """Where a build stands, as metadata-action reads it from GitHub (orch also from GitLab and git)."""

    ref: str = ""  # refs/heads/NAME, refs/tags/NAME, refs/pull/N/merge, or ""
    sha: str = ""
    event: str = "push"
    default_branch: str | None = None
    base_ref: str | None = None  # a tag's or a pull request's base branch, when known
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    commit_date: datetime | None = None

    def _after(self, prefix: str) -> str:
        return self.ref[len(prefix):] if self.ref.startswith(prefix) else ""

    @property
    def branch(self) -> str:
        return self._after("refs/heads/")

    @property
    def tag(self) -> str:
        return self._after("refs/tags/")

    @property
    def pull_request(self) -> str:
        return re.sub(r"/merge$", "", self._after("refs/pull/"))

    @property
    def is_default_branch(self) -> bool:
        if self.branch and self.default_branch == self.branch:
            return True
        # These events always run on the default branch's last commit.
        return bool(self.ref) and bool(re.search(r"create|discussion|issues|schedule", self.event))

    def values(self) -> dict[str, Any]:
        """What `{{...}}` may name anywhere in a rule."""
        return {
            "branch": lambda *_: self.branch, "tag": lambda *_: self.tag, "sha": lambda *_: short_sha(self.sha),
            "base_ref": lambda *_: self.base_ref or "" if (self.tag or self.pull_request) else "",
            "is_default_branch": lambda *_: "true" if self.is_default_branch else "false",
            "is_not_default_branch": lambda *_: "false" if self.is_default_branch else "true",
            "date": date_helper(self.now), "commit_date": date_helper(self.commit_date or self.now),
        }


def short_sha(sha: str) -> str:
    import os

    length = os.environ.get("DOCKER_METADATA_SHORT_SHA_LENGTH") or SHORT_SHA
    try:
        return sha[:int(length)]
    except ValueError:
        raise BadInput(f'DOCKER_METADATA_SHORT_SHA_LENGTH "{length}" is not a number', fix="set it to 7, say") from None


def _fields(line: str) -> list[tuple[str, str | None]]:
    """A CSV line of `key=value` fields (a bare field is a value); quotes protect commas."""
    row = next(csv.reader([line], skipinitialspace=True), [])
    out: list[tuple[str, str | None]] = []
    for item in row:
        key, sep, value = item.partition("=")
        out.append((key.strip().lower(), value.strip()) if sep else ("value", key.strip()))
    return out


@dataclass(frozen=True)
class Rule:
    """One metadata-action tag rule, parsed: its type and attributes (defaults filled in), and the
    line as written for messages."""

    type: str
    attrs: dict[str, str]
    text: str

    @property
    def priority(self) -> int:
        return int(self.attrs["priority"])


def parse_rule(line: str) -> Rule:
    attrs: dict[str, str] = {}
    kind = "raw"
    for key, value in _fields(line):
        if key == "type":
            if value == "pep440":
                raise BadInput(f'tag rule "{line}": type=pep440 is not supported by orch',
                               fix="use type=semver (or type=match) for the version tags")
            if value not in TYPES:
                raise BadInput(f'tag rule "{line}": unknown type "{value}"', fix=f"use one of {', '.join(TYPES)}")
            kind = str(value)
        else:
            attrs[key] = str(value)
    required = {"semver": "pattern", "match": "pattern", "ref": "event", "raw": "value"}.get(kind)
    if required and required not in attrs:
        raise BadInput(f'tag rule "{line}" has no {required}=', fix=RULE_HELP)
    defaults = {"schedule": {"pattern": "nightly"}, "semver": {"value": "", "match": ""},
                "match": {"group": "0", "value": ""}, "edge": {"branch": ""},
                "sha": {"prefix": "sha-", "format": "short"}}.get(kind, {})
    attrs = {**defaults, **attrs}
    if kind == "ref":
        if attrs["event"] not in ("branch", "tag", "pr"):
            raise BadInput(f'tag rule "{line}": event must be branch, tag or pr', fix=RULE_HELP)
        if attrs["event"] == "pr":
            attrs.setdefault("prefix", "pr-")
    if kind == "sha" and attrs["format"] not in ("short", "long"):
        raise BadInput(f'tag rule "{line}": format must be short or long', fix="write format=long")
    if kind == "match" and not attrs["group"].isdigit():
        raise BadInput(f'tag rule "{line}": group must be a number', fix="write group=1")
    attrs.setdefault("enable", "true")
    attrs.setdefault("priority", str(PRIORITIES[kind]))
    if not attrs["priority"].lstrip("-").isdigit():
        raise BadInput(f'tag rule "{line}": priority "{attrs["priority"]}" is not a number', fix="write priority=900")
    return Rule(kind, attrs, line)


@dataclass(frozen=True)
class Flavor:
    """metadata-action's flavor: whether `latest` goes with the tags, and the prefix and suffix
    every tag gets."""

    latest: str = "auto"  # auto | true | false
    prefix: str = ""
    suffix: str = ""
    prefix_latest: bool = False
    suffix_latest: bool = False


def parse_flavor(lines: tuple[str, ...] | list[str]) -> Flavor:
    values: dict[str, Any] = {}
    for line in lines:
        last = ""
        for key, value in _fields(line):
            if key == "value":
                raise BadInput(f'flavor "{line}" is not key=value', fix="write latest=auto, prefix=..., suffix=...")
            if key == "latest":
                if value not in ("auto", "true", "false"):
                    raise BadInput(f'flavor "{line}": latest must be auto, true or false', fix="write latest=auto")
                values["latest"] = value
            elif key in ("prefix", "suffix"):
                values[key], last = value, key
            elif key == "onlatest":
                if value not in ("true", "false"):
                    raise BadInput(f'flavor "{line}": onlatest must be true or false', fix="write onlatest=true")
                if last:
                    values[f"{last}_latest"] = value == "true"
            else:
                raise BadInput(f'flavor "{line}": unknown key "{key}"', fix="use latest, prefix, suffix, onlatest")
    return Flavor(**values)


@dataclass
class Version:
    """What the rules give for where the build stands: the main version, the other tags, and
    whether `latest` goes with them."""

    main: str | None = None
    partial: list[str] = field(default_factory=list)
    latest: bool | None = None


def sanitize(tag: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", tag)


class TagRules:
    def __init__(self, rules: list[str] | tuple[str, ...], flavor: Flavor | None = None) -> None:
        parsed = [parse_rule(line) for line in (rules or DEFAULT_RULES)]
        self.rules = sorted(parsed, key=lambda rule: -rule.priority)  # stable: equal priorities keep their order
        self.flavor = flavor or Flavor()

    def version(self, context: RefContext) -> Version:
        version = Version()
        values = context.values()
        for rule in self.rules:
            enabled = render(rule.attrs["enable"], values)
            if enabled not in ("true", "false"):
                raise BadInput(f'tag rule "{rule.text}": enable is "{enabled}", not true or false',
                               fix="write enable=true, enable=false or enable={{is_default_branch}}")
            if enabled == "false":
                continue
            found = self._apply(rule, context, values)
            if found is not None:
                self._add(version, *found)
        version.partial = list(dict.fromkeys(version.partial))
        version.latest = bool(version.latest)
        return version

    def _apply(self, rule: Rule, context: RefContext, values: dict[str, Any]) -> tuple[str, bool] | None:
        """(the tag this rule gives, whether `latest` goes with it under latest=auto), or None."""
        attrs = rule.attrs
        if rule.type == "schedule":
            return (self._affix(render(attrs["pattern"], values), attrs, values), False) \
                if "schedule" in context.event else None
        if rule.type in ("semver", "match"):
            if not context.tag and not attrs["value"]:
                return None
            raw = render(attrs["value"], values) if attrs["value"] else context.tag
            return self._semver(raw, attrs, values) if rule.type == "semver" else self._match(raw, attrs, values)
        if rule.type == "ref":
            value = {"branch": context.branch, "tag": context.tag, "pr": context.pull_request}[attrs["event"]]
            return (self._affix(value, attrs, values), attrs["event"] == "tag") if value else None
        if rule.type == "edge":
            if not context.branch or context.branch != (attrs["branch"] or context.default_branch):
                return None
            return self._affix("edge", attrs, values), False
        if rule.type == "raw":
            return self._affix(render(attrs["value"], values), attrs, values), False
        if rule.type == "sha":
            if not context.sha:
                return None
            sha = short_sha(context.sha) if attrs["format"] == "short" else context.sha
            return self._affix(sha, attrs, values), False
        raise AssertionError(rule.type)

    def _semver(self, raw: str, attrs: dict[str, str], values: dict[str, Any]) -> tuple[str, bool] | None:
        if attrs["match"]:
            found = re.search(attrs["match"], raw)
            raw = found.group(1) if found and found.groups() else raw
        raw = raw.replace("/", "-")
        version = parse_semver(raw)
        if version is None:
            return None  # not a semantic version: this rule gives nothing
        if version.prerelease:
            pattern = attrs["pattern"] if is_raw_statement(attrs["pattern"]) else "{{version}}"
            return self._affix(render(pattern, version.values()), attrs, values), False
        return self._affix(render(attrs["pattern"], version.values()), attrs, values), True

    def _match(self, raw: str, attrs: dict[str, str], values: dict[str, Any]) -> tuple[str, bool] | None:
        pattern, flags = attrs["pattern"], 0
        literal = re.fullmatch(r"/(.+)/(\w*)", pattern)
        if literal:
            pattern, flags = literal.group(1), re.IGNORECASE if "i" in literal.group(2) else 0
        found = re.search(pattern, raw, flags)
        group = int(attrs["group"])
        if not found or group > (found.re.groups or 0) or found.group(group) is None:
            return None
        return self._affix(found.group(group), attrs, values), True

    def _affix(self, value: str, attrs: dict[str, str], values: dict[str, Any]) -> str:
        if "prefix" in attrs:
            value = render(attrs["prefix"], values) + value
        elif self.flavor.prefix:
            value = render(self.flavor.prefix, values) + value
        if "suffix" in attrs:
            value += render(attrs["suffix"], values)
        elif self.flavor.suffix:
            value += render(self.flavor.suffix, values)
        return value

    def _add(self, version: Version, value: str, latest_on_auto: bool) -> None:
        if not value:
            return
        value = sanitize(value)
        if version.main is None:
            version.main = value
        elif value != version.main:
            version.partial.append(value)
        if version.latest is None:
            version.latest = latest_on_auto if self.flavor.latest == "auto" else self.flavor.latest == "true"

    def tag_names(self, version: Version) -> list[str]:
        if not version.main:
            return []
        names = [version.main, *version.partial]
        if version.latest:
            latest = (self.flavor.prefix if self.flavor.prefix_latest else "") + "latest" + \
                (self.flavor.suffix if self.flavor.suffix_latest else "")
            names.append(sanitize(latest))
        return names


def image_names(lines: tuple[str, ...] | list[str]) -> list[str]:
    """metadata-action's `images`: names, or `name=...,enable=...` lines; lower-cased."""
    out = []
    for line in lines:
        fields = _fields(line)
        if all(key == "value" for key, _ in fields):  # a plain list of names
            out += [str(value).lower() for _, value in fields if value]
            continue
        name, enabled = "", True
        for key, value in fields:
            if key in ("value", "name"):
                name = str(value)
            elif key == "enable":
                if value not in ("true", "false"):
                    raise BadInput(f'image "{line}": enable must be true or false', fix="write enable=false")
                enabled = value == "true"
            else:
                raise BadInput(f'image "{line}": unknown attribute "{key}"', fix="write name=REPO,enable=true")
        if not name:
            raise BadInput(f'image "{line}" has no name', fix="write the repository, e.g. ghcr.io/org/app")
        if enabled:
            out.append(name.lower())
    return out


def tags_for(images: list[str], names: list[str]) -> list[str]:
    return [f"{image}:{name}" for image in images for name in names] if images else list(names)
