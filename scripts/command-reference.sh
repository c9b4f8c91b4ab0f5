#!/usr/bin/env bash
# Writes docs/commands.md: a short header (exit codes, environment) and the command reference
# generated from the CLI itself by Typer's docs generator, so the reference cannot drift from the
# options the commands take. tests/test_docs.py fails when the file is not what this writes.
#   scripts/command-reference.sh [--check] [PYTHON]   (default: .venv/bin/python)
#   --check: write nothing; exit 1 (with the difference) when docs/commands.md is not up to date
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
if [ "${1:-}" = --check ]; then check=true; shift; fi
PYTHON=${1:-.venv/bin/python}
out=docs/commands.md
{
  cat <<'HEAD'
# Command reference

Generated from the CLI by `scripts/command-reference.sh` (Typer's docs generator): every command,
argument and option as `orch --help` shows it. Do not edit by hand.

## Exit codes

| code | meaning |
|---|---|
| 0 | success |
| 1 | the job failed (build, push, verification) |
| 2 | bad input (arguments, profile, platform name) |
| 3 | the environment is missing something (no daemon, no buildx, no emulator, registry unreachable) |

With `--json`, a failure also prints `{"error", "fix", "exit_code"}` on stdout. Global options go
before or after the subcommand. Environment defaults: `ORCH_PROFILE`, `ORCH_PLATFORMS` (build and
verify, when neither `--profile` nor `--platform` is given), `ORCH_LOG_FORMAT`, `ORCH_SIGN_KEY`;
`NO_COLOR` turns colours off.

## Commands

HEAD
  env -i PATH="$PATH" HOME="${HOME:-/root}" COLUMNS=100 TERM=dumb \
    "$PYTHON" -m typer orchestrator.cli.app utils docs --name orch | sed -e 's/^# `orch`$/### `orch`/' -e 's/^## `/### `/'
} >"$out.tmp"
if $check; then
  status=0
  diff -u "$out" "$out.tmp" >&2 || { status=1; echo "$out is out of date: run scripts/command-reference.sh" >&2; }
  rm -f "$out.tmp"
  exit $status
fi
mv "$out.tmp" "$out"
echo "wrote $out" >&2
