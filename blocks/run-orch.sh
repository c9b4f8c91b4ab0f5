#!/usr/bin/env bash
# `orch build` (or, with `release`, `orch release parts`) from the composite action's and the
# reusable workflow's inputs, passed in IN_* environment variables (never expanded into a script).
# Lists as the docker actions read them: a line each; platforms and tags split on commas too;
# metadata-action's inputs (images, tag-rules, flavor) drop lines that start with #.
set -euo pipefail
mode="${1:-build}"
orch="${ORCH:-orch}"
lines() { printf '%s\n' "$1" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v -e '^$' ${2:+-e "$2"} || true; }
if [ "$mode" = release ]; then
    set -- release parts
else
    set -- build
fi
[ -n "${IN_PROFILE:-}" ] && set -- "$@" --profile "$IN_PROFILE"
[ "$mode" = build ] && [ -n "${IN_FILE:-}" ] && set -- "$@" --file "$IN_FILE"
while IFS= read -r v; do set -- "$@" --platform "$v"; done < <(lines "${IN_PLATFORMS//,/$'\n'}")
while IFS= read -r v; do set -- "$@" --tag "$v"; done < <(lines "${IN_TAGS//,/$'\n'}")
while IFS= read -r v; do set -- "$@" --image "$v"; done < <(lines "${IN_IMAGES:-}" '^#')
while IFS= read -r v; do set -- "$@" --tag-rule "$v"; done < <(lines "${IN_TAG_RULES:-}" '^#')
while IFS= read -r v; do set -- "$@" --flavor "$v"; done < <(lines "${IN_FLAVOR:-}" '^#')
if [ "$mode" = build ]; then
    while IFS= read -r v; do set -- "$@" --build-arg "$v"; done < <(lines "${IN_BUILD_ARGS:-}")
    while IFS= read -r v; do set -- "$@" --label "$v"; done < <(lines "${IN_LABELS:-}")
    while IFS= read -r v; do set -- "$@" --annotation "$v"; done < <(lines "${IN_ANNOTATIONS:-}")
    # A secret's value reaches orch in an environment variable of its own, never on a command line.
    n=0
    while IFS= read -r v; do
        n=$((n + 1))
        export "ORCH_INPUT_SECRET_$n=${v#*=}"
        set -- "$@" --secret "id=${v%%=*},env=ORCH_INPUT_SECRET_$n"
    done < <(lines "${IN_SECRETS:-}")
fi
if [ "${IN_SIGN:-false}" = true ]; then
    set -- "$@" --sign
    case "${IN_SIGN_KEY:-}" in
        "") ;;  # keyless: the CI's identity token (id-token: write)
        *"-----BEGIN"*)  # the key's text: into a file only this user reads, removed on exit
            key="$(umask 077 && mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/orch-sign-key.XXXXXX")"
            trap 'rm -f "$key"' EXIT
            printf '%s\n' "$IN_SIGN_KEY" > "$key"
            set -- "$@" --sign-key "$key" ;;
        *) set -- "$@" --sign-key "$IN_SIGN_KEY" ;;  # a file or a KMS URI
    esac
fi
[ "${IN_DEEP:-false}" = true ] && set -- "$@" --deep
if [ "$mode" = build ]; then
    [ "${IN_PUSH:-false}" = true ] && set -- "$@" --push
    [ -n "${IN_PART:-}" ] && set -- "$@" --part "$IN_PART"
    [ -n "${IN_CONTEXT:-}" ] && set -- "$@" "$IN_CONTEXT"
fi
"$orch" "$@"
