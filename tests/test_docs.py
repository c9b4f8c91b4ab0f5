"""What people read stays true: the command reference is what the CLI says, and the README keeps
its shape (the two commands first, Install early, at most 350 lines, every docs/ link alive)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow  # a lint of the docs: a new interpreter renders every command's help, then a diff
def test_the_command_reference_is_generated_from_the_cli() -> None:
    checked = subprocess.run(["bash", str(REPO / "scripts" / "command-reference.sh"), "--check", sys.executable],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert checked.returncode == 0, checked.stderr[-3000:]


def test_the_readme_starts_with_the_two_commands_and_installs_within_80_lines() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 350, len(lines)
    first_block = "\n".join(lines[:25])
    assert "make demo" in first_block and "make test" in first_block
    install = next(i for i, line in enumerate(lines) if line.startswith("## Install"))
    quickstart = next(i for i, line in enumerate(lines) if line.startswith("## Quickstart"))
    assert install < 80 and install < quickstart
    assert "orch init" in "\n".join(lines[quickstart:quickstart + 15])


def test_every_local_link_of_the_readme_and_docs_names_a_file_that_exists() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
