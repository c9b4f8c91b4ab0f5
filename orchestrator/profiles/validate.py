"""Check a profile document against the field table and build the Profile: file:line:key errors."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.buildx_options import BY_KEY
from orchestrator.model.platform import Platform
from orchestrator.model.platform_parse import parse
from orchestrator.profiles.model import (
    TAG_FIELDS,
    Attestations,
    BuilderNode,
    BuilderSpec,
    Profile,
    ProfileError,
    is_tag_rule,
)
from orchestrator.profiles.schema import PROFILE_FIELDS, FieldSpec
from orchestrator.profiles.yamldoc import Document


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(type(value))
    return kind or type(value).__name__


def did_you_mean(word: str, choices: list[str]) -> str:
    import difflib  # only to suggest a name in an error
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class ProfileProblems(ProfileError):
    """Every problem found in one profile file, each with its line and key."""

    def __init__(self, problems: list[ProfileError]) -> None:
        first = problems[0]
        super().__init__(first.source, first.line, first.key_path, first.message.split(": ", 1)[-1], first.fix)
        if len(problems) > 1:
            self.message = f"{len(problems)} problems in {first.source}:" + "".join(
                f"\n  {p.message}" + (f" (fix: {p.fix})" if p.fix else "") for p in problems)
            self.fix = "fix each line listed"
        self.problems = problems


class _Validator:
    """Checks a document, noting every problem (a value it cannot use is left out and checking
    goes on); `done()` raises them all at once."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[ProfileError] = []

    def fail(self, path: str, problem: str, fix: str | None = None) -> ProfileError:
        return ProfileError(self.doc.source, self.doc.line(path), path, problem, fix)

    def note(self, error: ProfileError) -> None:
        self.problems.append(error)

    def done(self) -> None:
        if self.problems:
            raise ProfileProblems(self.problems)

    def mapping(self, value: Any, path: str, spec: Mapping[str, FieldSpec],
                required: tuple[str, ...] = (), one_of: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            where = path or "the profile"
            raise self.fail(path, f"{where} must be a mapping of keys to values, got {_describe(value)}",
                            "write `key: value` lines, e.g. `platforms: [linux/arm64]`")
        out: dict[str, Any] = {}
        for key, item in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in spec:
                allowed = ", ".join(spec)
                self.note(self.fail(key_path, f'unknown key "{key}"{did_you_mean(str(key), list(spec))}',
                                    f"allowed keys here: {allowed}"))
                continue
            try:
                check = self.runners if spec[key].kind == "runners" else self.value
                out[key] = check(item, key_path, spec[key])
            except ProfileError as exc:
                self.note(exc)
        for key in required:
            if key not in value:
                self.note(self.fail(path, f'"{key}" is required here', f"add `{key}: ...`"))
        if one_of and sum(key in value for key in one_of) != 1:
            names = " or ".join(f'"{key}"' for key in one_of)
            self.note(self.fail(path, f"give exactly one of {names}", f"e.g. `{one_of[0]}: ...`"))
        return out

    def runners(self, value: Any, path: str, spec: FieldSpec) -> dict[str, Any] | None:
        """A table per CI ({github: {PLATFORM: LABEL}, gitlab: {...}}) or one flat table."""
        table = FieldSpec("str_map", spec.help)
        if not isinstance(value, dict) or not any(key in spec.choices for key in value):
            return self.value(value, path, table)  # type: ignore[no-any-return]
        tables: dict[str, Any] = {}
        for key, item in value.items():
            if key not in spec.choices:
                self.note(self.fail(f"{path}.{key}", f'"{key}" is not a CI: a table per CI has only '
                                    f'{" and ".join(spec.choices)} under {path}',
                                    f"move it under {path}.github or {path}.gitlab"))
                continue
            tables[key] = {} if item is None else self.value(item, f"{path}.{key}", table)
        return tables

    def value(self, value: Any, path: str, spec: FieldSpec) -> Any:
        kind = spec.kind
        if value is None and kind not in ("object", "object_list"):
            return None
        if kind == "str":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.fail(path, f"expected text, got {_describe(value)} {value!r}")
            return str(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(path, f"expected true or false, got {value!r}")
            return value
        if kind == "enum":
            if value not in spec.choices:
                raise self.fail(path, f'"{value}" is not one of {", ".join(spec.choices)}'
                                      f"{did_you_mean(str(value), list(spec.choices))}")
            return value
        if kind == "provenance":
            if isinstance(value, bool):
                return "true" if value else "false"
            if value in ("mode=min", "mode=max", "true", "false"):
                return value
            raise self.fail(path, f'"{value}" is not a provenance setting', "use true, false, mode=min or mode=max")
        if kind in ("str_list", "platform_list"):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise self.fail(path, f"expected a list, got {_describe(value)}", "write `[a, b]` or one `- a` per line")
            out: list[str | Platform] = []
            for i, item in enumerate(items):
                item_path = f"{path}[{i}]"
                if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                    self.note(self.fail(item_path, f"expected text, got {_describe(item)} {item!r}"))
                elif kind == "platform_list":
                    try:
                        out.append(parse(str(item)))
                    except BadInput as exc:
                        self.note(self.fail(item_path, exc.message, exc.fix))
                else:
                    out.append(str(item))
            return tuple(out)
        if kind == "str_map":
            if not isinstance(value, dict):
                raise self.fail(path, f"expected a mapping of names to values, got {_describe(value)}",
                                "write `NAME: value` lines under it")
            result = {}
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    raise self.fail(f"{path}.{key}", f"expected a plain value, got {_describe(item)}")
                result[str(key)] = "" if item is None else (str(item).lower() if isinstance(item, bool) else str(item))
            return result
        if kind == "object":
            return self.mapping({} if value is None else value, path, spec.children or {}, spec.required,
                                spec.one_of)
        if kind == "object_list":
            if not isinstance(value, list):
                raise self.fail(path, f"expected a list, got {_describe(value)}")
            return [self.mapping(item, f"{path}[{i}]", spec.children or {}, spec.required, spec.one_of)
                    for i, item in enumerate(value)]
        raise AssertionError(kind)


def _check_tag_templates(validator: _Validator, values: dict[str, Any]) -> None:
    """Templates ({version}) and metadata-action rules (type=...), each checked as what it is."""
    for i, tag in enumerate(values.get("tags") or ()):
        if is_tag_rule(tag):
            _check_rule(validator, f"tags[{i}]", tag)
            continue
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(tag) if name is not None]
        except ValueError as exc:
            validator.note(validator.fail(f"tags[{i}]", f'bad template "{tag}": {exc}',
                                          "use {name} placeholders, {{ for a brace"))
            continue
        for name in names:
            if name not in TAG_FIELDS:
                validator.note(validator.fail(f"tags[{i}]", f'unknown placeholder "{{{name}}}" in "{tag}"'
                                              f"{did_you_mean(name, list(TAG_FIELDS))}",
                                              "allowed: {" + "}, {".join(TAG_FIELDS) + "}"))


def _check_rule(validator: _Validator, path: str, line: str) -> None:
    from orchestrator.model.tagrules import parse_rule  # only profiles with rules pay for it

    try:
        parse_rule(line)
    except BadInput as exc:
        validator.note(validator.fail(path, exc.message, exc.fix))


def _check_flavor_and_images(validator: _Validator, values: dict[str, Any]) -> None:
    from orchestrator.model.tagrules import image_names, parse_flavor

    for key, check in (("flavor", parse_flavor), ("images", image_names)):
        for i, line in enumerate(values.get(key) or ()):
            try:
                check([line])
            except BadInput as exc:
                validator.note(validator.fail(f"{key}[{i}]", exc.message, exc.fix))


def _check_runners(validator: _Validator, values: dict[str, Any]) -> None:
    """`runners:` keys are platforms (any alias), each once in each CI's table."""
    from orchestrator.model.platform_parse import parse
    from orchestrator.profiles.schema import RUNNER_CIS

    runners = values.get("runners") or {}
    nested = any(key in RUNNER_CIS for key in runners)
    for path, table in ((f"runners.{ci}", t) for ci, t in runners.items()) if nested else [("runners", runners)]:
        seen: dict[Any, str] = {}
        for key in table:
            try:
                platform = parse(key)
            except BadInput as exc:
                validator.note(validator.fail(f"{path}.{key}", exc.message, exc.fix))
                continue
            if platform in seen:
                validator.note(validator.fail(f"{path}.{key}", f'"{key}" is the platform "{seen[platform]}" is',
                                              "keep one of the two"))
            seen[platform] = key


def _check_cache_entries(validator: _Validator, values: dict[str, Any]) -> None:
    """`cache_from: [type=registry,ref=r:cache]` is two YAML items, "type=registry" and
    "ref=r:cache": a bare comma splits a flow list. Catch the split halves."""
    for key in ("cache_from", "cache_to"):
        for i, entry in enumerate(values.get(key) or ()):
            if "=" in entry and "type=" not in entry:
                validator.note(validator.fail(f"{key}[{i}]", f'"{entry}" has no type=: a YAML list split it at a '
                                              f'comma', f'quote the whole value: {key}: ["type=registry,ref=REPO:cache"]'))


def _beside(source: str, path: str | None) -> str | None:
    """A path a profile names, relative to the profile's own directory."""
    if path is None or os.path.isabs(path) or not os.path.isfile(source):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(source)), path)


def profile_from_document(doc: Document, default_name: str) -> Profile:
    validator = _Validator(doc)
    values = validator.mapping(doc.data, "", PROFILE_FIELDS)
    _check_tag_templates(validator, values)
    _check_flavor_and_images(validator, values)
    _check_cache_entries(validator, values)
    _check_runners(validator, values)
    validator.done()
    builder = values.get("builder")
    if builder is not None:
        nodes = builder.get("nodes")
        builder = BuilderSpec(
            name=builder.get("name"),
            driver=builder.get("driver"),
            driver_opts=builder.get("driver_opts"),
            nodes=None if nodes is None else tuple(BuilderNode(**node) for node in nodes),
            buildkitd_config=_beside(doc.source, builder.get("buildkitd_config")),
            buildkitd_flags=builder.get("buildkitd_flags"),
        )
        if builder.name == "default" and builder.driver not in (None, "docker"):
            raise validator.fail("builder.name", '"default" is the daemon\'s own builder (docker driver)',
                                 "pick another name for a builder orch should create")
    attestations = values.get("attestations")
    buildx = {k: values.pop(k) for k in list(values) if k in BY_KEY}
    return Profile(
        name=values.get("name") or default_name,
        source=doc.source,
        **{k: v for k, v in values.items() if k not in ("name", "builder", "attestations")},
        buildx=buildx or None,
        builder=builder,
        attestations=None if attestations is None else Attestations(**attestations),
        sources=(doc.source,),
    )
