"""`orch advise` points at the Dockerfile steps that break reproducible builds, each with its line
and its fix; steps that keep their caches out of the layer are left alone."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.authoring.advise import advise

from .test_reproducible import orch

# What such Dockerfiles commonly look like: a Python service built in a slim image, a Node front
# end, a final Alpine stage fetching a tool.
CARELESS = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM python:${PY}-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /build-info

FROM node:20 AS web
WORKDIR /web
COPY package*.json ./
RUN npm ci \\
 && npm run build

FROM alpine:3.20
RUN apk add curl
ADD https://example.com/tool-1.2.tar.gz /opt/
ADD https://github.com/moby/buildkit.git#v0.26.3 /src/buildkit
RUN yum install -y which
COPY --from=build /usr/local /usr/local
"""

CAREFUL = """\
# syntax=docker/dockerfile:1
FROM python:3.12-slim AS build
ARG SOURCE_DATE_EPOCH
RUN apt-get update && apt-get install -y --no-install-recommends gcc \\
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
RUN pip install --no-cache-dir gunicorn==23.0.0
RUN date -u -d "@${SOURCE_DATE_EPOCH}" +%FT%TZ > /build-info

FROM node:20 AS web
RUN --mount=type=cache,target=/root/.npm npm ci
RUN npm install -g pnpm@9 && npm cache clean --force

FROM debian:12 AS debs
RUN --mount=type=cache,target=/var/cache/apt --mount=type=cache,target=/var/lib/apt/lists \\
    apt-get update && apt-get install -y curl && rm -rf /var/log/apt /var/log/dpkg.log

FROM alpine:3.20
RUN apk add --no-cache curl
RUN apk update && apk add jq && rm -rf /var/cache/apk/*
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/t.tgz /opt/
ADD https://github.com/moby/buildkit.git#4c1e6b2a7ad0d6b3d2f1e0c9a8b7c6d5e4f3a2b1 /src/buildkit
RUN dnf install -y which && dnf clean all
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_each_step_that_breaks_reproducibility_is_named_with_its_line_and_fix(tmp_path: Path) -> None:
    hints = advise(write(tmp_path, CARELESS), []).reproducibility
    found = [(h.line, h.stage, h.problem.split(":")[0].split(" (")[0]) for h in hints]
    assert found == [
        (4, "build", "leaves /var/lib/apt/lists"),
        (6, "build", "leaves pip's cache"),
        (6, "build", "the .pyc files pip compiles record each source file's time of install, which differs on every "
                     "build"),
        (7, "build", "writes the time of the build"),
        (12, "web", "leaves npm's cache"),
        (16, "stage 2", "leaves apk's index"),
        (17, "stage 2", "ADD https"),
        (18, "stage 2", "ADD https"),
        (19, "stage 2", "leaves yum's metadata cache"),
    ]
    by_line = {h.line: h for h in hints}
    assert by_line[4].problem == ("leaves /var/lib/apt/lists (the package index the mirror served); "
                                  "/var/log/dpkg.log, /var/log/apt (install times) in the layer")
    assert by_line[4].fix.startswith("end the step with && rm -rf /var/lib/apt/lists/*")
    assert "date -u -d @$SOURCE_DATE_EPOCH" in by_line[7].fix and "declare ARG SOURCE_DATE_EPOCH" in by_line[7].fix
    assert by_line[12].end_line == 13 and "npm cache clean --force" in by_line[12].fix
    assert "--checksum=sha256:" in by_line[17].fix and "#<40-hex commit>" in by_line[18].fix


def test_steps_that_keep_caches_out_of_the_layer_or_write_the_commit_s_time_are_left_alone(tmp_path: Path) -> None:
    assert advise(write(tmp_path, CAREFUL), []).reproducibility == []


def test_orch_advise_prints_the_hints_always_and_as_breaking_a_reproducible_profile(tmp_path: Path) -> None:
    write(tmp_path, CARELESS)
    shown = orch("advise", "--platform", "linux/amd64", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Dockerfile: 9 steps would break reproducible builds (orch build --reproducible)" in shown.stdout
    assert "- [build] Dockerfile:7: RUN echo" in shown.stdout and "   fix: write the commit's time" in shown.stdout
    (tmp_path / "app.yaml").write_text("platforms: [linux/amd64]\nreproducible: true\n")
    strict = orch("advise", "--profile", str(tmp_path / "app.yaml"), "--json", cwd=tmp_path)
    assert strict.returncode == 0, strict.stderr
    document = json.loads(strict.stdout)
    assert document["reproducible_profile"] == "app"
    assert [h["line"] for h in document["reproducibility"]] == [4, 6, 6, 7, 12, 16, 17, 18, 19]
    write(tmp_path, CAREFUL)
    clean = orch("advise", "--profile", str(tmp_path / "app.yaml"), cwd=tmp_path)
    assert 'no step found that breaks reproducible builds (profile "app" builds with reproducible: true)' in \
        clean.stdout
