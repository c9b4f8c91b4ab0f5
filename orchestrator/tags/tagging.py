"""Which tags a build publishes, from what the user wrote: literal `-t` references, `{version}`-style
templates, metadata-action rules applied to `images`, or metadata-action's own output
(`--meta env` reads $DOCKER_METADATA_OUTPUT_JSON; `--meta FILE` its JSON or bake file), which
brings labels and annotations along."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.tagrules import RefContext, TagRules, image_names, parse_flavor, tags_for
from orchestrator.profiles import Profile
from orchestrator.profiles.model import is_tag_rule
from orchestrator.tags.gitinfo import GitInfo, ref_context, render_tags, template_values


@dataclass(frozen=True)
class Tagging:
    """The tags a build publishes, with the version, labels and annotations that came with them."""

    tags: tuple[str, ...]
    version: str | None = None  # the rules' main version (org.opencontainers.image.version)
    labels: dict[str, str] = field(default_factory=dict)  # from metadata-action's output
    annotations: dict[str, str] = field(default_factory=dict)  # [LEVEL:]KEY -> VALUE
    notes: tuple[str, ...] = ()  # what of the profile's tags was set aside, and why (said to the user)


def plan_tags(*, literal: tuple[str, ...], rules: tuple[str, ...], images: tuple[str, ...], flavor: tuple[str, ...],
              meta: str | None, profile: Profile, git: GitInfo | None, now: datetime, need_tags: bool = True
              ) -> Tagging:
    """The command line wins over the profile: -t, --tag-rule or --meta given, the profile's tags
    are not used; --image replaces the profile's images and keeps its tag rules (its tag templates,
    which name their own repository, are set aside). -t stays literal beside what rules and --meta
    give. What is set aside is said in `notes`. A runner's part (`need_tags` false) wants only the
    labels: rules that give no tag on its ref are fine."""
    from_meta = read_metadata_action(meta) if meta else Tagging(())
    profile_tags = () if (literal or rules or meta) else tuple(profile.tags or ())
    rule_lines = rules or tuple(t for t in profile_tags if is_tag_rule(t))
    templates = tuple(t for t in profile_tags if not is_tag_rule(t)) if not images else ()
    notes = _set_aside(profile, literal, rules, meta, images)
    # The profile's images go with rules (its own, or --tag-rule's); -t or --meta alone are the tags.
    repositories = image_names(images or (profile.images if rule_lines or not (literal or meta) else ()) or ())
    version = None
    from_rules: list[str] = []
    if rule_lines or repositories:
        if not repositories:
            raise BadInput(f'tag rules need the repositories to tag: "{rule_lines[0]}" has no image',
                           fix="add images: [REGISTRY/REPO] to the profile, or pass --image REGISTRY/REPO")
        tag_rules = TagRules(list(rule_lines), parse_flavor(list(flavor or profile.flavor or ())))
        context = ref_context(git, now=now)
        found = tag_rules.version(context)
        version = found.main
        from_rules = tags_for(repositories, tag_rules.tag_names(found))
        if not from_rules and need_tags:
            raise BadInput(f"no tag rule gives a tag here (git ref {context.ref or 'unknown'})",
                           fix="add a rule that always applies (type=sha, or type=raw,value=...), or pass -t")
    rendered = render_tags(templates, template_values(git, profile.name, now))
    tags = tuple(dict.fromkeys([*literal, *from_meta.tags, *from_rules, *rendered]))
    return Tagging(tags, version or from_meta.version, from_meta.labels, from_meta.annotations, notes)


def _set_aside(profile: Profile, literal: tuple[str, ...], rules: tuple[str, ...], meta: str | None,
               images: tuple[str, ...]) -> tuple[str, ...]:
    own_rules = tuple(t for t in profile.tags or () if is_tag_rule(t))
    rules = () if own_rules and tuple(rules) == own_rules else rules  # the profile's own rules, passed on (--part)
    given = [name for name, value in (("-t", literal), ("--tag-rule", rules), ("--meta", meta)) if value]
    if profile.tags and given:
        verb = "names" if len(given) == 1 else "name"
        return (f"the profile's tags ({', '.join(profile.tags)}) are not used: {' and '.join(given)} {verb} "
                "the tags",)
    templates = [t for t in profile.tags or () if not is_tag_rule(t)]
    if images and templates:
        return (f"the profile's tag templates ({', '.join(templates)}) are not used: --image names the "
                "repositories (the profile's tag rules still apply to it)",)
    return ()


def read_metadata_action(source: str) -> Tagging:
    """metadata-action's output as tags, labels and annotations: its `json` output, or a bake file
    it wrote (targets' tags, labels, annotations merged)."""
    if source == "env":
        text = os.environ.get("DOCKER_METADATA_OUTPUT_JSON")
        if not text:
            raise BadInput("--meta env: $DOCKER_METADATA_OUTPUT_JSON is not set",
                           fix="run docker/metadata-action in an earlier step of this job, or pass --meta FILE")
        where = "$DOCKER_METADATA_OUTPUT_JSON"
    else:
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise BadInput(f'--meta "{source}" cannot be read: {exc.strerror}',
                           fix="pass metadata-action's bake file (outputs.bake-file) or JSON, or --meta env") from None
        where = source
    try:
        document = json.loads(text)
    except ValueError:
        raise BadInput(f"{where} is not JSON", fix="pass metadata-action's json output or its bake file") from None
    parts: list[Mapping[str, Any]] = list((document.get("target") or {}).values()) if "target" in document \
        else [document]
    tags: list[str] = []
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    version = None
    for part in parts:
        tags += [str(t) for t in part.get("tags") or []]
        labels.update({str(k): str(v) for k, v in (part.get("labels") or {}).items()})
        for entry in part.get("annotations") or []:
            key, _, value = str(entry).partition("=")
            annotations[key] = value
        version = version or (part.get("args") or {}).get("DOCKER_META_VERSION")
    return Tagging(tuple(dict.fromkeys(tags)), version or labels.get("org.opencontainers.image.version"), labels,
                   annotations)


def label_lines(lines: tuple[str, ...] | list[str], context: RefContext | None = None
                ) -> tuple[dict[str, str], tuple[str, ...]]:
    """KEY=VALUE label lines read as metadata-action reads its `labels` input: split at the first
    `=` (`foo=` is foo with an empty value; the last of a repeated key wins), values rendered with
    the global expressions ({{branch}}, {{tag}}, {{sha}}, {{base_ref}}, {{is_default_branch}},
    {{date '...'}}, {{commit_date '...'}}) where the build stands (`context`); a line without `=`
    is left out (metadata-action drops it in silence; orch returns it, to say so)."""
    from orchestrator.model.tagtemplates import render

    labels: dict[str, str] = {}
    dropped: list[str] = []
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not key:
            dropped.append(line)
            continue
        labels[key] = render(value, context.values()) if context is not None and "{{" in value else value
    return labels, tuple(dropped)
