"""Fuzzing what orch reads from outside (hypothesis): registry answers, part records, the
promotion journal, references and label lines. Whatever comes in, orch answers with its own
error (BadInput, JobFailed, ValueError where documented) or a value: never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import BadInput, JobFailed
from orchestrator.image.read import check_index
from orchestrator.model.references import parse_reference
from orchestrator.publish import journal
from orchestrator.publish.parts import read_part
from orchestrator.registry.verified import load_json, well_formed
from orchestrator.tags.tagging import label_lines

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)
DIGESTS = st.sampled_from(["sha256:" + "a" * 64, "sha512:" + "b" * 128, "sha256:../../x", "md5:abc", "sha256:abc",
                           "", "SHA256:" + "A" * 64]) | st.text(max_size=80)
DESCRIPTOR = st.fixed_dictionaries({"digest": DIGESTS}, optional={"mediaType": JSON, "size": JSON, "platform": JSON})


@given(st.text(max_size=300))
def test_any_reference_text_is_a_reference_or_bad_input(text: str) -> None:
    try:
        ref = parse_reference(text)
    except BadInput:
        return
    assert ref.registry and ref.repository and len(ref.name) <= 255


@given(st.one_of(JSON, st.fixed_dictionaries({"manifests": st.lists(DESCRIPTOR | JSON, max_size=6)})))
def test_any_index_is_judged_without_surprises(document: object) -> None:
    if not isinstance(document, dict):
        return
    try:
        check_index("r/a:1", document)
    except JobFailed:
        return
    for entry in document.get("manifests") or []:
        assert well_formed(entry["digest"])  # what passes names only well-formed digests


@given(st.binary(max_size=200) | st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 100_000)))
def test_any_body_is_json_or_value_error(body: bytes) -> None:
    try:
        load_json(body)
    except ValueError:
        pass


@settings(max_examples=60)
@given(JSON)
def test_any_part_file_is_a_part_or_bad_input(document: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orch-part.json"
        path.write_text(json.dumps({"kind": "orch-part", "format": 1, **document}
                                   if isinstance(document, dict) else document))
        try:
            record = read_part(path)
        except BadInput:
            return
        assert record.platforms and well_formed(record.digest)


@given(JSON)
def test_any_journal_record_is_read_as_far_as_it_goes(record: object) -> None:
    for entry in journal._entries(record):
        assert isinstance(entry.digest, str) and isinstance(entry.pid, int)


@given(st.lists(st.text(max_size=30), max_size=8))
def test_any_label_lines_give_labels_and_what_was_left_out(lines: list[str]) -> None:
    labels, dropped = label_lines(lines)
    assert len(labels) + len(dropped) <= len(lines) and all(key for key in labels)


HOSTILE = st.text(alphabet=st.sampled_from(list("ab:<>&|`%\n\r\x1b[]()\u2028 ")) | st.characters(), max_size=40)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(HOSTILE, HOSTILE, HOSTILE, HOSTILE, st.one_of(st.integers(-3, 5), st.text(max_size=3),
                                                   st.floats(allow_nan=False, allow_infinity=False)))
def test_any_part_fields_reach_the_summary_and_log_inert(builder: str, node: str, job: str, runner: str,
                                                         attempt: object) -> None:
    """Whatever a part's builder, node, job and runner say, the release's summary holds no raw < or >
    from them and its log lines no control character or leading `::`; a wrong type is BadInput."""
    from orchestrator.release.parts_release import _part_json, _platform_row
    from orchestrator.report.ci_outputs import parts_release_markdown

    document = {"kind": "orch-part", "format": 1, "repository": "localhost:5000/a/b", "digest": "sha256:" + "a" * 64,
                "platforms": ["linux/amd64"], "builder": builder, "ci": {"provider": "github", "pipeline": "1",
                                                                          "job": job, "attempt": attempt,
                                                                          "runner": runner},
                "entries": [{"platform": "linux/amd64", "node": node}]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.json"
        path.write_text(json.dumps(document))
        try:
            record = read_part(path)
        except BadInput as refused:
            assert "is damaged" in refused.message
            return

    class Entry:
        label, digest, config = "linux/amd64", "sha256:" + "a" * 64, None
        shown_platform = record.platforms[0]

    row = _platform_row(Entry(), {record.platforms[0]: record}, None)
    shown = _part_json(record)
    for text in (row["runner"], row["builder"] or "", row["node"] or "", shown["runner"]):
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text) and not text.lstrip().startswith("::")
    markdown = parts_release_markdown({"digest": record.digest, "repository": "r", "parts": [shown],
                                       "platforms": [row], "replaced": [row["runner"]]})
    assert "<" not in markdown and ">" not in markdown
