# Shared by deploy/container/*.sh (sourced, never run): podman on this kind of host, the stand-in
# base images, and the project image. Everything here is idempotent and cached across runs.
#
# Environment (all optional):
#   GAN_CONTAINER_CACHE   where the debootstrapped rootfs tarball is kept (/var/cache/mnist-digit-gan)
#   GAN_WHEELS_DIR        a pip find-links directory holding the CPU torch wheel (/opt/wheels)
#   GAN_IMAGE             the project image's name (localhost/mnist-digit-gan:ci)
#   DEBIAN_MIRROR         the Debian mirror debootstrap uses (http://deb.debian.org/debian)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONTAINER_DIR="$REPO_ROOT/deploy/container"
GAN_CONTAINER_CACHE="${GAN_CONTAINER_CACHE:-/var/cache/mnist-digit-gan}"
GAN_WHEELS_DIR="${GAN_WHEELS_DIR:-/opt/wheels}"
GAN_IMAGE="${GAN_IMAGE:-localhost/mnist-digit-gan:ci}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_REVISION=1 # bump to re-debootstrap the base (the other stand-ins follow their files' hash)
STANDIN_LABEL="org.mnist-digit-gan.standin"
BASE_IMAGE="localhost/mnist-digit-gan-standin/debian:bookworm"
PYTHON_IMAGE="docker.io/library/python:3.11-slim"
NGINX_IMAGE="docker.io/library/nginx:1.27-alpine"
# Our containers.conf (runc, no ulimits, cgroupfs, file events) instead of the host's.
export CONTAINERS_CONF="$CONTAINER_DIR/containers.conf"

# podman 4.3 without systemd cannot schedule HEALTHCHECK timers and says so on every run/rm;
# `podman healthcheck run` still runs the check. Filter that noise, keep every other error.
podman() {
  command podman "$@" 2> >(grep -v -e 'unable to get systemd connection' \
    -e 'Removing timer for container' >&2 || true)
}

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${LOG_TAG:-container}" -1 "$*"; }
die() {
  log "FAIL: $*"
  exit 1
}

# Seconds since $1 (an epoch from `date +%s.%N`), one decimal.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Install podman (and runc, debootstrap) when missing. Returns 1 when no runtime can be had.
ensure_podman() {
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
    || ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      log "podman is not installed and cannot be installed here (needs root and apt-get)"
      return 1
    fi
    log "installing podman runc debootstrap (apt-get)"
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap \
      >/dev/null || return 1
  fi
  podman info >/dev/null 2>&1 || {
    log "podman is installed but cannot run containers here: $(podman info 2>&1 | tail -1)"
    return 1
  }
}

# True when image $1 exists and is our stand-in of revision $2, or is a real image.
standin_current() {
  podman image exists "$1" || return 1
  local label
  label="$(podman image inspect --format "{{ index .Labels \"$STANDIN_LABEL\" }}" "$1")"
  # No label: a real image (pulled on a machine that can reach a registry) - use it as it is.
  [ -z "$label" ] || [ "$label" = "<no value>" ] || [ "$label" = "$2" ]
}

# The Debian base: debootstrap once into a tarball (cached), then import it into podman.
ensure_base_image() {
  if standin_current "$BASE_IMAGE" "$BASE_REVISION"; then return 0; fi
  local tarball="$GAN_CONTAINER_CACHE/debian-bookworm-minbase.tar" started
  mkdir -p "$GAN_CONTAINER_CACHE"
  if [ ! -s "$tarball" ]; then
    started="$(date +%s.%N)"
    log "debootstrap --variant=minbase bookworm (cold cache: about 30 s)"
    local rootfs
    rootfs="$(mktemp -d "$GAN_CONTAINER_CACHE/rootfs.XXXXXX")"
    debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
      tail -20 "$rootfs.log"
      rm -rf "$rootfs" "$rootfs.log"
      die "debootstrap failed"
    }
    # The registry's TLS chain is in this host's bundle; pip inside a build needs it too. It goes
    # beside Debian's own bundle, which apt regenerates whenever it installs ca-certificates.
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/host-ca-bundle.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs" "$rootfs.log"
    log "rootfs cached in $tarball ($(du -h "$tarball" | cut -f1), $(elapsed "$started") s)"
  fi
  podman import --quiet \
    --change "LABEL $STANDIN_LABEL=$BASE_REVISION" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

# python:3.11-slim and nginx:1.27-alpine stand-ins, built FROM the Debian base (layer-cached).
# Its revision is the hash of its Containerfile and the files it copies ($3...), so editing them
# rebuilds it, and nothing else does.
ensure_standin() { # $1 = image name, $2 = Containerfile, $3... = files it copies
  local revision
  revision="$(cat "${@:2}" | sha256sum | cut -c1-12)"
  if standin_current "$1" "$revision"; then return 0; fi
  ensure_base_image
  log "building stand-in $1 from $(basename "$2")"
  podman build --quiet --network host --pull=never \
    --build-arg "BASE=$BASE_IMAGE" --label "$STANDIN_LABEL=$revision" \
    -f "$2" -t "$1" "$CONTAINER_DIR" >/dev/null
}

ensure_standins() {
  ensure_standin "$PYTHON_IMAGE" "$CONTAINER_DIR/python-standin.Containerfile"
  ensure_standin "$NGINX_IMAGE" "$CONTAINER_DIR/nginx-standin.Containerfile" \
    "$CONTAINER_DIR/nginx-standin-entrypoint.sh" "$CONTAINER_DIR"/nginx-standin.d/*
}

# The CPU torch wheel on this host, as pip names its version (e.g. 2.13.0+cpu), or nothing.
local_torch_version() {
  local wheel
  wheel="$(find "$GAN_WHEELS_DIR" -maxdepth 1 -name 'torch-*-cp311-*.whl' 2>/dev/null | sort | tail -1)"
  [ -n "$wheel" ] && basename "$wheel" | cut -d- -f2
}

# Build the project's image from the real Dockerfile. The only local parts are build arguments and
# a read-only bind mount of the wheel directory (the stand-in python image looks there for wheels).
build_project_image() {
  local torch_version args=()
  torch_version="$(local_torch_version || true)"
  if [ -n "$torch_version" ]; then
    # The PyTorch index is not reachable here: torch comes from the find-links directory, its
    # dependencies from PyPI.
    args+=(--volume "$GAN_WHEELS_DIR:/wheels:ro" --build-arg "TORCH_VERSION=$torch_version"
      --build-arg "TORCH_INDEX=https://pypi.org/simple")
  fi
  podman build --format docker --network host --pull=never "${args[@]}" -t "$GAN_IMAGE" \
    --ignorefile "$REPO_ROOT/.dockerignore" -f "$REPO_ROOT/Dockerfile" \
    "$REPO_ROOT"
}
