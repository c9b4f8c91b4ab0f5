#!/usr/bin/env python3
"""Carry docker/metadata-action's test tables into tests/data/metadata-action/cases.json.

    python3 scripts/carry-metadata-action.py PEER_CHECKOUT [--groups pr-head-sha,json,...]

PEER_CHECKOUT is a clone of github.com/docker/metadata-action (or the git directory of one);
the commit read is recorded in the file's `source`. Each `test.each([...])` table of the named
`describe` groups in __tests__/meta.test.ts is evaluated by Node (its TypeScript casts removed:
the tables are literals) and written as cases: the inputs, the fixture's environment and the
event payload fields the rules read, and what the peer expects. Cases of other groups already in
the file are kept as they are.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "metadata-action" / "cases.json"
ENVIRONMENT = ("GITHUB_ACTIONS", "GITHUB_REF", "GITHUB_EVENT_NAME", "GITHUB_SHA")
# What the table rows hold after name, fixture and inputs, per group.
SHAPES = {
    "pr-head-sha": ("version", "tags", "labels"),
    "json": ("json",),
    "bakeFile": ("bake_tags", "bake_labels", "bake_annotations"),
    "bakeFileTagsLabels": ("bake",),
    "sepTags": ("joined",),
}


def git_show(checkout: Path, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir(checkout)), "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def git_dir(checkout: Path) -> Path:
    return checkout / ".git" if (checkout / ".git").exists() else checkout


def table(source: str, group: str) -> list[list[object]]:
    """The rows of `describe('GROUP', ...)`'s test.each table, evaluated."""
    start = source.index(f"describe('{group}', () => {{")
    begin = source.index("test.each([", start) + len("test.each(")
    end = source.index("])('given", begin) + 1
    literal = re.sub(r"\s+as\s+[A-Z][A-Za-z]*(?:<[^>]*>)?(?:\[\])?", "", source[begin:end])
    printed = subprocess.run(["node", "-e", f"process.stdout.write(JSON.stringify({literal}))"], check=True,
                             capture_output=True, text=True).stdout
    rows: list[list[object]] = json.loads(printed)
    return rows


def fixture_facts(checkout: Path, env_file: str) -> tuple[dict[str, str], dict[str, object]]:
    env = dict(line.split("=", 1) for line in git_show(checkout, f"__tests__/fixtures/{env_file}").splitlines()
               if "=" in line)
    payload: dict[str, object] = {}
    event_path = env.get("GITHUB_EVENT_PATH", "")
    if event_path:
        try:
            full = json.loads(git_show(checkout, event_path.removeprefix("./")))
        except subprocess.CalledProcessError:
            full = {}
        for key in ("number", "base_ref"):
            if key in full:
                payload[key] = full[key]
        if full.get("repository", {}).get("default_branch"):
            payload["repository"] = {"default_branch": full["repository"]["default_branch"]}
        pull = full.get("pull_request")
        if pull:
            payload["pull_request"] = {"base": {"ref": pull["base"]["ref"]}, "head": {"sha": pull["head"]["sha"]}}
    return {k: env[k] for k in ENVIRONMENT if k in env}, payload


def case(checkout: Path, group: str, row: list[object]) -> dict[str, object]:
    name, env_file, inputs, *expected = row
    assert isinstance(inputs, dict) and isinstance(env_file, str)
    environment, payload = fixture_facts(checkout, env_file)
    if group == "pr-head-sha":
        environment["DOCKER_METADATA_PR_HEAD_SHA"] = "true"
    return {"name": name, "fixture": env_file, "group": group, "images": inputs.get("images", []),
            "tags": inputs.get("tags", []), "flavor": inputs.get("flavor", []), "labels": inputs.get("labels", []),
            "inputs": {k: v for k, v in inputs.items() if k not in ("images", "tags", "flavor", "labels")},
            "environment": environment, "payload": payload,
            "expected": dict(zip(SHAPES[group], expected, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--groups", default=",".join(SHAPES))
    args = parser.parse_args()
    commit = subprocess.run(["git", "--git-dir", str(git_dir(args.checkout)), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    source = git_show(args.checkout, "__tests__/meta.test.ts")
    groups = args.groups.split(",")
    data = json.loads(DATA.read_text())
    data["cases"] = [c for c in data["cases"] if c["group"] not in groups]
    for group in groups:
        data["cases"] += [case(args.checkout, group, row) for row in table(source, group)]
    data["carried"] = {**data.get("carried", {}), **{group: commit for group in groups}}
    DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"carried {', '.join(groups)} from {commit}")


if __name__ == "__main__":
    main()
