#!/usr/bin/env bash
# BuildKit's own engine for the tests, started from the static binaries this project is given
# (never downloaded): two buildkitd nodes on the host joined as a remote-driver builder, a
# docker-container builder on a BuildKit image made offline, and buildx v0.30.1 unpacked beside
# the system's buildx (the test suite runs it from a private DOCKER_CONFIG: tests/conftest.py;
# the machine's own buildx is never replaced).
#
#   scripts/buildkit-up.sh up              start what is missing (idempotent); prints what is there
#   scripts/buildkit-up.sh down            remove the builders, stop the nodes
#
# Binaries come from PATH (buildkitd, buildctl) or from ORCH_BUILDKIT_DIR (default: the
# project's ../shared/buildkit, as *.xz). Needs root, the engine of scripts/engine-up.sh and
# its registry on 127.0.0.1:${ORCH_REGISTRY_PORT:-5000}.
#
# What it makes:
#   builder orch-farm       remote driver, node farm-amd64 (linux/amd64, linux/386) and node
#                           farm-arm (linux/arm64, linux/arm/v7, linux/arm/v6), each a buildkitd
#                           on /run/orch-buildkit-NODE.sock with its own state under $STATE
#   builder orch-container  docker-container driver on localhost:PORT/orch/buildkit:v0.26.3-orch2
#                           (busybox, buildkitd, buildctl, Debian's runc and its libraries)
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${ORCH_REGISTRY_PORT:-5000}
STATE=${ORCH_STATE_DIR:-/var/lib/orch-engine}/buildkit
SHARED=${ORCH_BUILDKIT_DIR:-$(cd .. && pwd)/shared/buildkit}
BIN=$STATE/bin
IMAGE=localhost:$PORT/orch/buildkit:v0.26.3-orch2  # bump the suffix when the recipe below changes
FARM=orch-farm
CONTAINER=orch-container
SYSTEM_PLUGIN_DIR=/usr/local/lib/docker/cli-plugins  # where an earlier version put 0.30.1
NODES="farm-amd64:linux/amd64,linux/386 farm-arm:linux/arm64,linux/arm/v7,linux/arm/v6"

say() { printf 'buildkit-up: %s\n' "$*" >&2; }
die() { printf 'buildkit-up: error: %s\n' "$*" >&2; exit 3; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not answer within ${limit}s"
}

binary() { # binary NAME: a runnable copy under $BIN, from PATH or the shared .xz
  local name=$1
  [ -x "$BIN/$name" ] && return
  mkdir -p "$BIN"
  if [ -f "$SHARED/$name.xz" ]; then
    xz -dc "$SHARED/$name.xz" >"$BIN/$name.tmp" && chmod +x "$BIN/$name.tmp" && mv "$BIN/$name.tmp" "$BIN/$name"
  elif command -v "$name" >/dev/null; then
    ln -sf "$(command -v "$name")" "$BIN/$name"
  else
    die "$name is neither on PATH nor at $SHARED/$name.xz (set ORCH_BUILDKIT_DIR)"
  fi
}

node_config() { # node_config NODE PLATFORMS
  local node=$1 platforms=$2 list
  list=$(printf '"%s", ' ${platforms//,/ })
  mkdir -p "$STATE/$node"
  cat >"$STATE/$node/buildkitd.toml" <<TOML
root = "$STATE/$node/root"
[grpc]
  address = ["unix:///run/orch-buildkit-$node.sock"]
[worker.oci]
  enabled = true
  binary = "$(command -v runc)"
  snapshotter = "overlayfs"
  platforms = [${list%, }]
[worker.containerd]
  enabled = false
[registry."localhost:$PORT"]
  http = true
[registry."127.0.0.1:$PORT"]
  http = true
TOML
}

node_answers() { "$BIN/buildctl" --addr "unix:///run/orch-buildkit-$1.sock" debug workers; }

start_node() { # start_node NODE PLATFORMS
  local node=$1
  if node_answers "$node" >/dev/null 2>&1; then return; fi
  node_config "$node" "$2"
  say "starting buildkitd node $node (log: $STATE/$node/buildkitd.log)"
  setsid "$BIN/buildkitd" --config "$STATE/$node/buildkitd.toml" --oci-worker-net=host \
    >"$STATE/$node/buildkitd.log" 2>&1 </dev/null &
  echo $! >"$STATE/$node/buildkitd.pid"
  wait_for 30 "buildkitd node $node" node_answers "$node"
}

farm_up() {
  local append=() pair node platforms
  for pair in $NODES; do
    start_node "${pair%%:*}" "${pair#*:}"
  done
  docker buildx inspect "$FARM" >/dev/null 2>&1 && return
  say "creating the remote-driver builder $FARM"
  for pair in $NODES; do
    node=${pair%%:*} platforms=${pair#*:}
    docker buildx create "${append[@]}" --name "$FARM" --node "$node" \
      --driver remote --platform "$platforms" "unix:///run/orch-buildkit-$node.sock" >/dev/null
    append=(--append)
  done
  docker buildx inspect --bootstrap "$FARM" >/dev/null
}

image_up() { # the docker-container driver's BuildKit image, made FROM scratch and pushed to the loopback registry
  docker buildx imagetools inspect "$IMAGE" >/dev/null 2>&1 && return
  local ctx=$STATE/image busybox=${ORCH_STATE_DIR:-/var/lib/orch-engine}/busybox/amd64 runc lib
  [ -s "$busybox" ] || die "no static busybox at $busybox: run scripts/engine-up.sh first"
  runc=$(command -v runc) || die "runc is missing (apt-get install runc)"
  rm -rf "$ctx" && mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/usr/sbin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp"
  chmod 1777 "$ctx/rootfs/tmp"  # BuildKit writes its temporary files there
  cp "$busybox" "$ctx/rootfs/bin/busybox"
  for tool in sh mount umount mkdir cat ls; do ln -sf busybox "$ctx/rootfs/bin/$tool"; done
  cp "$BIN/buildkitd" "$BIN/buildctl" "$ctx/rootfs/bin/"
  cp "$runc" "$ctx/rootfs/usr/sbin/runc"
  for lib in $(ldd "$runc" | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")" && cp -L "$lib" "$ctx/rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ctx/rootfs/etc/passwd"
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin:/usr/sbin\nVOLUME /var/lib/buildkit\nENTRYPOINT ["buildkitd"]\n' \
    >"$ctx/Dockerfile"
  say "making $IMAGE offline"
  docker buildx build --builder default --platform linux/amd64 --provenance=false \
    --output "type=registry,name=$IMAGE" "$ctx" >"$STATE/image-build.log" 2>&1 ||
    die "could not make $IMAGE (see $STATE/image-build.log)"
}

container_up() {
  image_up
  docker buildx inspect "$CONTAINER" >/dev/null 2>&1 && return
  mkdir -p "$STATE/$CONTAINER"
  printf '[registry."localhost:%s"]\n  http = true\n[registry."127.0.0.1:%s"]\n  http = true\n' "$PORT" "$PORT" \
    >"$STATE/$CONTAINER/buildkitd.toml"
  say "creating the docker-container builder $CONTAINER"
  docker buildx create --name "$CONTAINER" --driver docker-container \
    --driver-opt "image=$IMAGE,network=host" --buildkitd-config "$STATE/$CONTAINER/buildkitd.toml" >/dev/null
  docker buildx inspect --bootstrap "$CONTAINER" >/dev/null
}

forget_replaced_buildx() { # an earlier version of this script put 0.30.1 over the machine's buildx
  if [ -L "$SYSTEM_PLUGIN_DIR/docker-buildx" ] && [ "$(readlink "$SYSTEM_PLUGIN_DIR/docker-buildx")" = "$BIN/docker-buildx" ]; then
    rm -f "$SYSTEM_PLUGIN_DIR/docker-buildx"
    say "the machine's own buildx is back ($(docker buildx version 2>/dev/null))"
  fi
}

down() {
  docker buildx rm "$FARM" >/dev/null 2>&1 || true
  docker buildx rm "$CONTAINER" >/dev/null 2>&1 || true
  local pair pid
  for pair in $NODES; do
    pid=$(cat "$STATE/${pair%%:*}/buildkitd.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
}

case ${1:-} in
  up)
    [ "$(id -u)" = 0 ] || die "BuildKit nodes on the host need root"
    docker info >/dev/null 2>&1 || die "no Docker daemon: run scripts/engine-up.sh first"
    command -v xz >/dev/null || { apt-get update -qq && apt-get install -y -qq xz-utils >/dev/null; }
    binary buildkitd
    binary buildctl
    binary docker-buildx
    forget_replaced_buildx
    farm_up
    container_up
    say "ready: builders $FARM (remote, 2 nodes) and $CONTAINER (docker-container); buildx v0.30.1 at $BIN/docker-buildx"
    ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
