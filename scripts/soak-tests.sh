#!/usr/bin/env bash
# Run the timing-sensitive tests N times while two busy loops hog both CPUs, as a loaded CI
# machine would, and print passed/runs per test. A test that waits on the clock instead of an
# event shows up here as less than N/N.
#
#   scripts/soak-tests.sh N [PYTEST-NODE-ID...]     (default: the list below)
#
# Needs the engine (`make engine`) for the engine tests among them. Exits 1 unless every test
# passed every round.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: scripts/soak-tests.sh N [PYTEST-NODE-ID...]}
shift
PYTHON=${PYTHON:-.venv/bin/python}

# Tests that involve concurrency, signals, processes started and stopped, or a fault proxy's
# timing: where a race would show.
TESTS=(
  "tests/test_emulation.py::test_the_live_view_on_a_terminal_shows_each_platform"
  "tests/test_perarch.py::test_builds_run_at_most_jobs_at_once_with_an_even_share_per_node"
  "tests/test_faults.py::test_a_signal_during_promotion_finishes_it_and_says_so"
  "tests/test_faults.py::test_sigterm_during_the_build_stops_buildx_and_moves_nothing"
  "tests/test_faults.py::test_a_node_daemon_killed_during_fan_out_is_named_with_what_it_was_building"
  "tests/test_faults.py::test_two_publishes_to_one_tag_at_once_each_publish_their_own_or_say_they_were_raced"
  "tests/test_faults.py::test_registry_gone_during_promotion_leaves_each_tag_where_the_output_says"
  "tests/test_faults.py::test_a_registry_down_from_the_start_stops_orch_before_any_build_step"
  "tests/test_faults.py::test_a_registry_that_wants_a_login_stops_orch_before_building_with_the_fix"
  "tests/test_registry_reach.py::test_a_tls_registry_behind_a_proxy_with_a_private_ca_and_a_client_certificate"
  "tests/test_registry_api.py"
  "tests/test_perarch.py::test_two_node_fan_out_builds_each_platform_on_its_node"
)
[ $# -gt 0 ] && TESTS=("$@")

hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
for _ in 1 2; do
  ( while :; do :; done ) &
  hogs+=($!)
done

results=$(mktemp -d)
for round in $(seq 1 "$rounds"); do
  # -rA: one PASSED/FAILED/ERROR line per test id, whatever the outcome.
  CI=true "$PYTHON" -m pytest -q -p no:cacheprovider -rA "${TESTS[@]}" >"$results/round-$round.log" 2>&1 || true
  grep -E '^(PASSED|FAILED|ERROR) ' "$results/round-$round.log" | sed -E 's/ - .*//' >>"$results/outcomes"
  printf 'round %s/%s: %s\n' "$round" "$rounds" "$(tail -n 1 "$results/round-$round.log")" >&2
done

# passed/runs per test id
awk '{ id = $2; runs[id]++; if ($1 == "PASSED") passed[id]++ }
     END { for (id in runs) printf "%d/%d %s\n", passed[id], runs[id], id }' "$results/outcomes" | sort -k2
echo "logs: $results" >&2
awk -v rounds="$rounds" '{ runs[$2]++ } $1 != "PASSED" { bad = 1 }
     END { for (id in runs) if (runs[id] != rounds) bad = 1; exit bad }' "$results/outcomes"
