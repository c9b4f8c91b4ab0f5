#!/usr/bin/env bash
# Bring up a real build stack for orch: Docker daemon (containerd image store),
# buildx, QEMU binfmt handlers, a registry on loopback and a seeded multi-arch
# busybox base image. Idempotent: a stack that already answers is left alone.
#
# Environment:
#   ORCH_REGISTRY_PORT   loopback port of the demo registry (default 5000)
#   ORCH_STATE_DIR       where logs, registry data and downloads live
#                        (default /var/lib/orch-engine)
#   ORCH_SEED_IMAGE      name of the seeded base in that registry
#                        (default orch/busybox:stable)
set -euo pipefail

PORT=${ORCH_REGISTRY_PORT:-5000}
STATE=${ORCH_STATE_DIR:-/var/lib/orch-engine}
SEED_IMAGE=${ORCH_SEED_IMAGE:-orch/busybox:stable}
SEED_REF="localhost:${PORT}/${SEED_IMAGE}"
# Debian arch -> buildx TARGETARCH+TARGETVARIANT suffix used in the seed context.
SEED_ARCHES="amd64:amd64 arm64:arm64 armhf:armv7 armel:armv6 armel:armv5 i386:386 ppc64el:ppc64le s390x:s390x"
SEED_PLATFORMS="linux/amd64,linux/arm64,linux/arm/v7,linux/arm/v6,linux/arm/v5,linux/386,linux/ppc64le,linux/s390x"
# Added when Debian delivers it (riscv64 is released from trixie on); the seed
# is complete without it.
SEED_OPTIONAL="riscv64:riscv64:linux/riscv64"

say() { printf 'engine-up: %s\n' "$*" >&2; }
die() { printf 'engine-up: error: %s\n' "$*" >&2; exit 3; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what did not answer within ${limit}s"
}

engine_answers() { docker info >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; }

is_debian_root() {
  [ "$(id -u)" = 0 ] && [ -r /etc/os-release ] && . /etc/os-release &&
    { [ "${ID:-}" = debian ] || [[ " ${ID_LIKE:-} " == *" debian "* ]]; }
}

install_packages() {
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # bookworm lacks buildx and its docker.io is too old: take exactly five
    # packages from trixie at low priority (never `-t trixie`, which would
    # upgrade libc6 and dpkg).
    cat >/etc/apt/sources.list.d/orch-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat >/etc/apt/preferences.d/orch-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    local from=/trixie
  else
    local from=""
  fi
  say "installing docker, buildx, registry and qemu-user-static (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "docker.io$from" "containerd$from" "docker-buildx$from" "docker-registry$from" \
    "docker-cli$from" qemu-user-static binfmt-support curl ca-certificates openssl >/dev/null
}

ensure_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    command -v update-binfmts >/dev/null || die "update-binfmts missing: apt-get install binfmt-support qemu-user-static"
    update-binfmts --enable >/dev/null 2>&1 || true
  fi
  for arch in aarch64 arm ppc64le s390x; do
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ] || die "binfmt handler qemu-$arch missing after install"
    grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/qemu-$arch" ||
      die "binfmt handler qemu-$arch lacks the F flag: reinstall qemu-user-static"
  done
}

start_dockerd() {
  mkdir -p /etc/docker "$STATE"
  if [ ! -s /etc/docker/daemon.json ]; then
    echo '{ "features": { "containerd-snapshotter": true } }' >/etc/docker/daemon.json
  fi
  say "starting dockerd (log: $STATE/dockerd.log)"
  setsid dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
  wait_for 60 "dockerd" docker info
}

ensure_engine() {
  if engine_answers; then
    say "docker daemon and buildx answer: leaving them as they are"
    return
  fi
  if ! is_debian_root; then
    die "no working docker daemon with buildx here. Install Docker Engine >= 25 with the buildx plugin,
enable the containerd image store ({\"features\":{\"containerd-snapshotter\":true}} in daemon.json),
install qemu-user-static (or run: docker run --privileged --rm tonistiigi/binfmt --install all),
then run this script again. (Automatic setup is done only as root on Debian/Ubuntu.)"
  fi
  if ! command -v dockerd >/dev/null || ! command -v docker-registry >/dev/null ||
     ! [ -x /usr/libexec/docker/cli-plugins/docker-buildx ] || ! command -v qemu-aarch64-static >/dev/null; then
    install_packages
  fi
  ensure_binfmt
  if ! docker info >/dev/null 2>&1; then start_dockerd; fi
  docker buildx version >/dev/null 2>&1 || die "docker buildx does not answer after install"
}

registry_answers() { curl -fsS "http://127.0.0.1:$1/v2/" >/dev/null 2>&1; }

ensure_registry() {
  if registry_answers "$PORT"; then
    say "registry on 127.0.0.1:$PORT answers"
    return
  fi
  command -v docker-registry >/dev/null || die "docker-registry missing: apt-get install docker-registry"
  mkdir -p "$STATE/registry-$PORT"
  cat >"$STATE/registry-$PORT.yml" <<CFG
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $STATE/registry-$PORT }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:$PORT
CFG
  say "starting registry on 127.0.0.1:$PORT (log: $STATE/registry-$PORT.log)"
  setsid docker-registry serve "$STATE/registry-$PORT.yml" >"$STATE/registry-$PORT.log" 2>&1 </dev/null &
  wait_for 30 "registry on 127.0.0.1:$PORT" registry_answers "$PORT"
}

fetch_busybox() { # fetch_busybox DEBIAN_ARCH DEST_FILE
  local arch=$1 dest=$2 lists="$STATE/apt-lists-$1" work suite
  [ -s "$dest" ] && return
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  [ "$arch" = riscv64 ] && [ "$suite" = bookworm ] && suite=trixie
  mkdir -p "$lists/partial"
  # Only the main suite, not every source the host lists: fewer index files,
  # fewer chances to meet a mirror mid-sync.
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$suite" >"$STATE/apt-sources-$arch.list"
  local o=(-oAPT::Architecture="$arch" -oAPT::Architectures="$arch" -oDir::State::Lists="$lists"
           -oDir::Etc::SourceList="$STATE/apt-sources-$arch.list" -oDir::Etc::SourceParts=/dev/null
           -oAcquire::Retries=3 -oAPT::Sandbox::User=root)
  apt-get "${o[@]}" update -qq >/dev/null || say "apt index update for $arch reported errors; trying the download anyway"
  work=$(mktemp -d)
  (cd "$work" && apt-get "${o[@]}" download -qq busybox-static >/dev/null) ||
    die "could not download busybox-static:$arch from Debian"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/x" || die "could not unpack busybox-static:$arch"
  # bookworm ships /bin/busybox, trixie (merged /usr) /usr/bin/busybox. Checked
  # explicitly: callers run this inside `if ( ... )`, where set -e is off.
  local found
  for found in "$work/x/bin/busybox" "$work/x/usr/bin/busybox" ""; do
    [ -n "$found" ] && [ -s "$found" ] && break
  done
  [ -n "$found" ] || { rm -rf "$work"; die "busybox-static:$arch holds no bin/busybox"; }
  cp "$found" "$dest" || die "could not copy busybox for $arch"
  rm -rf "$work"
}

seed_has_all_platforms() {
  local listed
  listed=$(docker buildx imagetools inspect "$SEED_REF" 2>/dev/null | awk '/Platform:/ {print $2}') || return 1
  for platform in ${SEED_PLATFORMS//,/ }; do
    grep -qx "$platform" <<<"$listed" || return 1
  done
}

seed_base_image() {
  if seed_has_all_platforms; then
    say "seed image $SEED_REF present with every platform"
    return
  fi
  local ctx="$STATE/seed-context" platforms=$SEED_PLATFORMS
  rm -rf "$ctx"
  mkdir -p "$ctx" "$STATE/busybox"
  for triple in $SEED_OPTIONAL; do
    local deb=${triple%%:*} rest=${triple#*:}
    local suffix=${rest%%:*} platform=${rest#*:}
    if [ -s "$STATE/busybox/$deb" ] || ( fetch_busybox "$deb" "$STATE/busybox/$deb" ) 2>/dev/null; then
      cp "$STATE/busybox/$deb" "$ctx/busybox-$suffix"
      platforms="$platforms,$platform"
    else
      say "busybox-static:$deb could not be downloaded: seeding without $platform"
    fi
  done
  for pair in $SEED_ARCHES; do
    local deb=${pair%%:*} suffix=${pair##*:}
    if [ ! -s "$STATE/busybox/$deb" ]; then
      [ "$(id -u)" = 0 ] || die "seeding $SEED_REF needs root (apt-get download of busybox-static:$deb)"
      say "downloading busybox-static:$deb"
      fetch_busybox "$deb" "$STATE/busybox/$deb"
    fi
    cp "$STATE/busybox/$deb" "$ctx/busybox-$suffix"
  done
  cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
ARG TARGETARCH
ARG TARGETVARIANT
COPY busybox-${TARGETARCH}${TARGETVARIANT} /bin/busybox
# Runs on the target platform: under QEMU on a foreign host.
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
DF
  say "building seed image $SEED_REF for $platforms"
  docker buildx build --progress=plain --provenance=false --platform "$platforms" \
    --output "type=registry,name=$SEED_REF" "$ctx" >"$STATE/seed-build.log" 2>&1 ||
    { tail -n 30 "$STATE/seed-build.log" >&2; die "seed build failed (log: $STATE/seed-build.log)"; }
  docker buildx imagetools inspect "$SEED_REF" >/dev/null || die "seed image missing after push"
}

# Tools the tests use beside the engine: openssl makes the private CA of the TLS registry tests,
# tmux runs the live view on a real terminal, chromium opens the HTML build report headless,
# cosign (Debian's) signs with orch --sign and is the peer that checks what orch signed.
ensure_test_tools() {
  local missing=()
  command -v openssl >/dev/null || missing+=(openssl)
  command -v cosign >/dev/null || missing+=(cosign)
  command -v tmux >/dev/null || missing+=(tmux)
  command -v chromium >/dev/null || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] && return
  is_debian_root || die "missing ${missing[*]}: install them (the tests use them)"
  say "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

main() {
  mkdir -p "$STATE"
  ensure_engine
  ensure_test_tools
  ensure_registry
  seed_base_image
  say "ready: docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), $(docker buildx version | cut -d' ' -f1-2), registry 127.0.0.1:$PORT, base $SEED_REF"
}

main "$@"
