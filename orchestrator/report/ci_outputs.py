"""CI outputs (report layer): what a CI job gets from orch besides its exit code.

GitHub Actions (GITHUB_ACTIONS=true): step outputs appended to $GITHUB_OUTPUT, as
docker/build-push-action gives them (`digest`, `metadata`) and more (`tags`, `platforms`,
`platform-digests`), multi-line values in the runner's `name<<DELIMITER` form; a Markdown
report appended to $GITHUB_STEP_SUMMARY; log sections folded with `::group::`; failures and
warnings as `::error::` / `::warning::` annotations.

GitLab CI and anything that reads dotenv: `--output-env FILE` writes ORCH_DIGEST=... lines
(one value per line, as `artifacts:reports:dotenv` takes them).

Every document is reported with the secret values orch knows of masked (redact.keep_secret), before
it is escaped for Markdown; each file's text is masked again as it is written.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from orchestrator.ci_facts import inert, on_github, workflow_command
from orchestrator.redact import mask, mask_document

MARKS = {"ok": "✅", "warn": "⚠️", "fail": "❌", "skip": "➖"}

Unwritten = list[tuple[str, OSError]]  # what was not written (`--output-env out.env`), and why


def attempt(unwritten: Unwritten, what: str, write: Callable[[], object]) -> None:
    """Call `write()`; a failure (a full disk) is added to `unwritten`, not raised: every other
    output is still written, and the command says once, after its work, what was not."""
    try:
        write()
    except OSError as exc:
        unwritten.append((what, exc))


@contextmanager
def group(say: Callable[[str], None], title: str) -> Iterator[None]:
    """Fold the lines `say` prints meanwhile into one section of the GitHub log."""
    if not on_github():
        yield
        return
    say(f"::group::{title}")
    try:
        yield
    finally:
        say("::endgroup::")


def github_outputs(values: Mapping[str, str], path: str | None = None) -> None:
    """Append step outputs to $GITHUB_OUTPUT (a value with a newline in the heredoc form)."""
    target = path or os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    import uuid

    lines = []
    for name, value in values.items():
        if "\n" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}")
        else:
            lines.append(f"{name}={value}")
    with open(target, "a", encoding="utf-8") as file:
        file.write(mask("\n".join(lines)) + "\n")


def step_summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as file:
            file.write(mask(markdown.rstrip("\n")) + "\n\n")


def write_dotenv(path: str, values: Mapping[str, str]) -> None:
    """KEY=VALUE lines; a value never spans lines (dotenv reports take one line each)."""
    lines = [f"{key}={' '.join(str(value).split())}" for key, value in values.items()]
    Path(path).write_text(mask("\n".join(lines)) + "\n")


# -- what a build, a release or a verification reports --------------------------


def build_values(document: Mapping[str, Any]) -> dict[str, str]:
    """Step outputs of one build (or release), under the names docker/build-push-action and
    docker/metadata-action give them, so a workflow swaps those steps for orch and keeps reading
    `steps.ID.outputs.*`: `imageid` and `digest` (the index digest, as buildx's iidfile names a
    multi-platform image), `metadata` (buildx's metadata-file keys), `tags`, `labels`,
    `annotations`, `json`, `version`. orch's own: `result` (success | failure), `platforms`,
    `platform-digests`, `orch-json` (the whole result document); on failure `failed-platform`,
    `failed-step` and `error`."""
    platforms = document.get("platforms") or []
    digest = document.get("digest") or ""
    tags = list(document.get("tags") or [])
    labels = dict(document.get("labels") or {})
    annotations = [f"{key}={value}" for key, value in (document.get("annotations") or {}).items()]
    values = {
        "result": "success" if document.get("ok", True) else "failure",
        "imageid": digest,
        "digest": digest,
        "metadata": json.dumps(buildx_metadata(document), indent=2),
        "tags": "\n".join(tags),
        "labels": "\n".join(f"{key}={value}" for key, value in labels.items()),
        "annotations": "\n".join(annotations),
        "json": json.dumps({"tags": tags, "tag-names": list(dict.fromkeys(t.rsplit(":", 1)[-1] for t in tags)),
                            "labels": labels, "annotations": annotations}, indent=2),
        "version": document.get("version") or "",
        "platforms": ",".join(p["platform"] for p in platforms),
        "platform-digests": json.dumps({p["platform"]: p["digest"] for p in platforms if p.get("digest")}),
        "orch-json": json.dumps(document, indent=2),
    }
    if not document.get("ok", True):
        first = (document.get("failed") or [{}])[0]
        values.update({"failed-platform": first.get("platform") or "", "failed-step": first.get("step") or "",
                       "error": str(document.get("error") or "").splitlines()[0] if document.get("error") else ""})
    return values


def buildx_metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    """What `docker buildx build --metadata-file` writes for a pushed multi-platform image, for what
    orch published: the index's digest and descriptor, and the names it was pushed as."""
    descriptor = document.get("descriptor")
    if not document.get("digest"):
        return {}
    found: dict[str, Any] = {"containerimage.digest": document["digest"]}
    if descriptor:
        found["containerimage.descriptor"] = descriptor
    found["image.name"] = ",".join(document.get("tags") or [])
    return found


def dotenv_values(document: Mapping[str, Any], prefix: str = "ORCH") -> dict[str, str]:
    platforms = document.get("platforms") or []
    tags = document.get("tags") or []
    return {f"{prefix}_RESULT": "success" if document.get("ok", True) else "failure",
            f"{prefix}_DIGEST": document.get("digest") or "", f"{prefix}_IMAGE": tags[0] if tags else "",
            f"{prefix}_TAGS": " ".join(tags), f"{prefix}_PLATFORMS": ",".join(p["platform"] for p in platforms)}


def findings_markdown(verification: Mapping[str, Any] | None) -> str:
    if not verification:
        return ""
    rows = [f"| {MARKS.get(f['level'], f['level'])} {f['level']} | {f['check']} | {f.get('platform') or ''} | "
            f"{_cell(f['message'])} |" for f in verification.get("findings") or []]
    return "| | check | platform | finding |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def _cell(text: object) -> str:
    """Data in a Markdown table cell (or line): HTML escaped (no raw < > & from data), one line,
    its pipes and backticks inert."""
    import html  # a step summary's only (html.entities: ~3 ms of every build's start otherwise)

    return html.escape(inert(text)).replace("|", "\\|").replace("`", "&#96;")


def build_markdown(document: Mapping[str, Any], *, seconds: float | None = None, host: Any = None) -> str:
    """The step summary of one build: platforms, verification, tags before -> after."""
    from orchestrator.errors import BadInput
    from orchestrator.model.platform_match import can_run
    from orchestrator.model.platform_parse import parse

    if not document.get("ok", True):
        return failure_markdown(document, seconds)
    lines = [f"### orch build: `{document.get('digest') or 'nothing published'}`", ""]
    facts = [f"strategy **{document.get('strategy')}**"]
    if document.get("fallback_reason"):
        facts.append(f"per platform because {document['fallback_reason']}")
    if seconds is not None:
        facts.append(f"{seconds:.1f} s")
    lines += ["; ".join(facts), "", "| platform | digest | config | built | time |", "|---|---|---|---|---|"]
    for platform in document.get("platforms") or []:
        runs = [step for step in platform.get("steps") or [] if str(step.get("instruction", "")).startswith("RUN")]
        if runs:  # the steps know where they ran (this machine, or a node given the platform)
            native = not any(step.get("emulated") for step in runs)
        else:
            try:
                native = host is not None and can_run(host, parse(platform["platform"]))
            except BadInput:  # an exotic entry: said to be emulated
                native = False
        where = "native" if native else "emulated (QEMU)"
        how = f"{_cell(platform.get('state') or 'built')}, " + (
            f"on {_cell(platform['node'])}, " if platform.get("node") else "") + where
        lines.append(f"| {_cell(platform['platform'])} | `{_digest(platform.get('digest') or 'not pushed')}` | "
                     f"{_cell(platform.get('config') or '?')} | "
                     f"{how} | {_platform_time(platform)} |")
    from orchestrator.report.html import timeline_markdown

    lines += ["", f"Where the time went: {document.get('step_seconds', 0):.1f} s of steps, "
              f"{document.get('emulated_seconds', 0):.1f} s under QEMU.", "", timeline_markdown(document)]
    lines += ["", findings_markdown(document.get("verification"))]
    return "\n".join(lines + moves_markdown(document.get("promotion") or []))


def _platform_time(platform: Mapping[str, Any]) -> str:
    """Its own build's time (per platform), else the span of its steps in the shared build."""
    if platform.get("seconds"):
        return f"{platform['seconds']:.1f} s"
    spans = [(step["started"], step["started"] + step["seconds"]) for step in platform.get("steps") or []
             if step.get("started") is not None and step.get("seconds") is not None]
    return f"{max(e for _, e in spans) - min(b for b, _ in spans):.1f} s" if spans else ""


def failure_markdown(document: Mapping[str, Any], seconds: float | None = None, what: str = "orch build") -> str:
    """The step summary of a build (or release) that failed: where, why, and that no tag moved."""
    lines = [f"### {what}: FAILED, no tag was changed", ""]
    if seconds is not None:
        lines += [f"after {seconds:.1f} s", ""]
    failed = document.get("failed") or []
    if failed:
        lines += ["| platform | failed at |", "|---|---|"]
        lines += [f"| {_cell(f.get('platform') or '(all)')} | {_cell(f.get('step') or '?')} |" for f in failed]
    error = str(document.get("error") or "").splitlines()
    if error:
        lines += ["", "<pre>", *(_cell(line) for line in error[:20]), "</pre>"]
    asked = document.get("asked_tags") or []
    if asked:
        lines += ["", "Tags left where they were: " + ", ".join(f"`{t}`" for t in asked)]
    return "\n".join(lines)


def moves_markdown(moves: list[dict[str, Any]]) -> list[str]:
    """Each tag, before and after."""
    if not moves:
        return []
    return ["| tag | before | after | |", "|---|---|---|---|", *(
        f"| `{m['tag']}` | {_short(m['before'])} | {_short(m['after'])} | {m['state']} |" for m in moves)]


def parts_release_markdown(document: Mapping[str, Any]) -> str:
    """The step summary of `orch release`: each platform with the runner that built it and its time."""
    if not document.get("ok", True):
        return failure_markdown(document, what="orch release")
    revision = document.get("revision") or ""
    lines = [f"### orch release: `{document.get('digest')}`", "",
             f"{len(document.get('parts') or [])} parts of {document.get('repository')}"
             + (f" at `{revision[:12]}`" if revision else "") + ", merged and verified; every tag moved together",
             "", "| platform | digest | runner | builder | runner's time |", "|---|---|---|---|---|"]
    for row in document.get("platforms") or []:
        node = f" ({_cell(row['node'])})" if row.get("node") else ""
        lines.append(f"| {_cell(row['platform'])} | `{_digest(row.get('digest') or '')}` | "
                     f"{_cell(row.get('runner') or '')} | {_cell(row.get('builder') or '')}{node}"
                     + (f", BuildKit {_cell(row['buildkit'])}" if row.get("buildkit") else "")
                     + f" | {_seconds(row.get('seconds'))} |")
    lines += [f"\nNote: {_cell(note)}" for note in document.get("replaced") or []]
    reproducible = document.get("reproducible")
    if reproducible:
        versions = set((reproducible.get("buildkit") or {}).values())
        lines.append(f"\nBuilt with --reproducible at SOURCE_DATE_EPOCH {reproducible.get('source_date_epoch')}"
                     + ("; by different BuildKit versions: each platform reproduces on a builder of its own "
                        "version (another writes other bytes)" if len(versions) > 1 else ""))
    lines += ["", findings_markdown(document.get("verification"))]
    return "\n".join(lines + moves_markdown(document.get("promotion") or []))


def report_parts_release(document: Mapping[str, Any], *, output_env: str | None) -> Unwritten:
    """Everything a CI job gets from `orch release`: the outputs of a build, its own summary;
    what could not be written."""
    document = mask_document(document)
    unwritten: Unwritten = []
    if output_env:
        attempt(unwritten, f"--output-env {output_env}", lambda: write_dotenv(output_env, dotenv_values(document)))
    if on_github():
        _github(unwritten, build_values(document), parts_release_markdown(document))
    return unwritten


def _github(unwritten: Unwritten, values: Mapping[str, str], markdown: str) -> None:
    attempt(unwritten, f"GITHUB_OUTPUT {os.environ.get('GITHUB_OUTPUT')}", lambda: github_outputs(values))
    attempt(unwritten, f"GITHUB_STEP_SUMMARY {os.environ.get('GITHUB_STEP_SUMMARY')}", lambda: step_summary(markdown))


def verify_markdown(document: Mapping[str, Any]) -> str:
    verdict = "verified" if document.get("ok") else "FAILED"
    return f"### orch verify `{document.get('ref')}`: {verdict}\n\n" + findings_markdown(document)


def release_markdown(targets: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["### orch release", "", "| target | digest | platforms | under QEMU | tags |", "|---|---|---|---|---|"]
    for name, result in targets.items():
        tags = ", ".join(f"`{m['tag']}` ({m['state']})" for m in result.get("promotion") or [])
        platforms = ", ".join(p["platform"] for p in result.get("platforms") or [])
        lines.append(f"| {name} | `{(result.get('digest') or '')[:19]}` | {platforms} | "
                     f"{result.get('emulated_seconds', 0):.1f} s | {tags} |")
    return "\n".join(lines)


def _digest(text: object) -> str:
    """A digest's first 19 characters, in a code span: nothing but [a-z0-9:] kept."""
    return "".join(c for c in str(text)[:19] if c.isalnum() or c == ":")


def _seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _short(digest: str | None) -> str:
    return f"`{digest[:19]}`" if digest else "(none)"


def report_build(document: Mapping[str, Any], *, output_env: str | None, seconds: float | None = None) -> Unwritten:
    """Everything a CI job gets from one build; what could not be written."""
    document = mask_document(document)
    unwritten: Unwritten = []
    if output_env:
        attempt(unwritten, f"--output-env {output_env}", lambda: write_dotenv(output_env, dotenv_values(document)))
    if not on_github():
        return unwritten
    from orchestrator.model.platform_match import detect_host

    _github(unwritten, build_values(document),
            build_markdown(document, seconds=seconds, host=detect_host(os.uname().machine).platform))
    return unwritten


def report_release(targets: Mapping[str, Mapping[str, Any]], *, output_env: str | None) -> Unwritten:
    targets = mask_document(targets)
    unwritten: Unwritten = []
    if output_env:
        values = {}
        for name, result in targets.items():
            key = "ORCH_" + "".join(c if c.isalnum() else "_" for c in name.upper())
            values.update(dotenv_values({**result, "tags": [m["tag"] for m in result.get("promotion") or []]}, key))
        attempt(unwritten, f"--output-env {output_env}", lambda: write_dotenv(output_env, values))
    if on_github():
        _github(unwritten, {"digests": json.dumps({n: r.get("digest") for n, r in targets.items()}),
                            "metadata": json.dumps({"targets": targets}, indent=2)}, release_markdown(targets))
    return unwritten


def report_verify(document: Mapping[str, Any]) -> None:
    document = mask_document(document)
    if not on_github():
        return
    step_summary(verify_markdown(document))
    for finding in document.get("findings") or []:
        if finding["level"] in ("fail", "warn"):
            where = f"{finding.get('platform')}: " if finding.get("platform") else ""
            print(workflow_command("error" if finding["level"] == "fail" else "warning",
                             f"{finding['check']}: {where}{finding['message']}", "orch verify"), file=sys.stderr,
                  flush=True)
