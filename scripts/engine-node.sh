#!/usr/bin/env bash
# A second Docker daemon on this machine, reachable as a docker context: a
# real extra build node for multi-node builders and per-arch fan-out tests.
#
#   scripts/engine-node.sh start NAME [--classic-store]
#                                        start it (idempotent); prints the context name.
#                                        --classic-store: the pre-containerd image store,
#                                        whose docker-driver builder builds one platform
#                                        at a time (as Docker Engine before 29 by default)
#   scripts/engine-node.sh stop NAME     stop it, remove its bridge, check the main daemon
#
# It gets its own data root, exec root (with its own containerd), socket and
# bridge from its very first start: a second daemon started without its own
# bridge was seen to take the main daemon's docker0 with it. Needs root and
# the packages scripts/engine-up.sh installs. It lists 192.0.2.0/24 (TEST-NET-1, never
# routed) in insecure-registries, so tests can see orch honour a daemon's insecure list.
set -euo pipefail

action=${1:-}
name=${2:-}
store=${3:-}
[[ $action == start || $action == stop ]] && [[ $name =~ ^[a-z0-9][a-z0-9-]{0,20}$ ]] \
  && [[ -z $store || $store == --classic-store ]] || {
  echo "usage: $0 start|stop NAME [--classic-store]   (NAME: lower-case letters, digits, '-'; at most 21)" >&2
  exit 2
}
snapshotter=true
[[ $store == --classic-store ]] && snapshotter=false

STATE=${ORCH_STATE_DIR:-/var/lib/orch-engine}/nodes/$name
RUN=/run/orch-node-$name
SOCK=$RUN.sock
# Interface names have at most 15 characters; the subnet is derived from the name.
hash=$(printf %s "$name" | cksum | cut -d' ' -f1)
BRIDGE=orchbr$((hash % 100000))
SUBNET_OCTET=$((100 + hash % 100))
say() { echo "engine-node: $*" >&2; }

answers() { docker -H "unix://$SOCK" info >/dev/null 2>&1; }

main_bridge_check() {
  # The trap from ENGINE.md: if the main daemon lost docker0, its builds fail
  # with "adding interface ... to bridge docker0 failed"; restart it.
  if docker info >/dev/null 2>&1 && ! ip link show docker0 >/dev/null 2>&1; then
    say "main daemon lost its docker0 bridge: restarting it"
    [ -s /var/run/docker.pid ] && kill -TERM "$(cat /var/run/docker.pid)" 2>/dev/null || true
    for _ in $(seq 1 50); do docker info >/dev/null 2>&1 || break; sleep 0.2; done
    bash "$(dirname "$0")/engine-up.sh" >&2
  fi
}

start() {
  if answers; then
    say "node $name already answers on $SOCK"
  else
    mkdir -p "$STATE" "$RUN"
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge
      ip addr add "172.31.$SUBNET_OCTET.1/24" dev "$BRIDGE"
      ip link set "$BRIDGE" up
    fi
    cat >"$STATE/daemon.json" <<JSON
{
  "features": { "containerd-snapshotter": $snapshotter },
  "bridge": "$BRIDGE",
  "iptables": false,
  "ip-masq": false,
  "insecure-registries": ["192.0.2.0/24"]
}
JSON
    say "starting dockerd for node $name (socket $SOCK, log $STATE/dockerd.log)"
    setsid dockerd --config-file "$STATE/daemon.json" --data-root "$STATE/data" --exec-root "$RUN" \
      --pidfile "$STATE/dockerd.pid" -H "unix://$SOCK" >"$STATE/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 150); do answers && break; sleep 0.2; done
    answers || { say "node $name did not answer within 30 s; see $STATE/dockerd.log"; tail -5 "$STATE/dockerd.log" >&2; exit 3; }
  fi
  if ! docker context inspect "$name" >/dev/null 2>&1; then
    docker context create "$name" --description "orch test node" --docker "host=unix://$SOCK" >/dev/null
  fi
  main_bridge_check
  echo "$name"
}

stop() {
  if [ -s "$STATE/dockerd.pid" ]; then
    pid=$(cat "$STATE/dockerd.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  docker context rm -f "$name" >/dev/null 2>&1 || true
  ip link del "$BRIDGE" 2>/dev/null || true
  main_bridge_check
  say "node $name stopped"
}

"$action"
