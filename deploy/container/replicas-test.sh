#!/usr/bin/env bash
# `make replicas-test`: docker-compose.replicas.yml for real, through podman-compose, under wrk
# load with faults (benchmarks/replicas.py: activation, kill -9, rolling restart, one replica's
# CPU and memory). Writes benchmarks/results-replicas.json (RESULTS=... to put it elsewhere).
#   PODMAN_COMPOSE   the podman-compose to use (the Makefile passes its tools venv's)
#   SCENARIOS        a comma list of benchmarks/replicas.py's scenarios (default: all)
#   EXTRA_COMPOSE_FILE  a compose file merged over docker-compose.replicas.yml (experiments)
set -euo pipefail
LOG_TAG=replicas-test
# shellcheck source=deploy/container/lib.sh
source "$(dirname "$0")/lib.sh"

PODMAN_COMPOSE="${PODMAN_COMPOSE:-podman-compose}"
RESULTS="${RESULTS:-$REPO_ROOT/benchmarks/results-replicas.json}"
PROJECT="gan-replicas-$$"
COMPOSE=("$PODMAN_COMPOSE" -p "$PROJECT" -f "$REPO_ROOT/docker-compose.replicas.yml"
  ${EXTRA_COMPOSE_FILE:+-f "$EXTRA_COMPOSE_FILE"})
STARTED_ALL="$(date +%s.%N)"

cleanup() {
  local rc=$?
  if [ $rc != 0 ] && podman ps -a --filter "label=com.docker.compose.project=$PROJECT" -q | grep -q .; then
    for name in $(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}'); do
      echo "--- $name (last 15 lines)"
      podman logs --tail 15 "$name" 2>&1 || true
    done
  fi
  timeout 120 "${COMPOSE[@]}" down -v -t 5 >/dev/null 2>&1 || true
  # Whatever compose left behind: only this run's project.
  podman ps -a --filter "label=com.docker.compose.project=$PROJECT" -q | xargs -r podman rm -f >/dev/null 2>&1 || true
  podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
  [ $rc = 0 ] || log "FAIL (exit $rc) after $(elapsed "$STARTED_ALL") s"
}
trap cleanup EXIT
trap 'exit 143' TERM INT # `timeout` in the Makefile: still clean up

if ! ensure_podman; then
  log "SKIP: no container runtime can be installed on this machine; nothing was run"
  exit 0
fi
command -v "$PODMAN_COMPOSE" >/dev/null || die "no $PODMAN_COMPOSE (pip install podman-compose)"
command -v wrk >/dev/null || {
  log "installing wrk (apt-get)"
  apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
}

started="$(date +%s.%N)"
ensure_standins
build_log="$(mktemp)"
build_project_image >"$build_log" 2>&1 || {
  tail -40 "$build_log"
  die "podman build failed"
}
rm -f "$build_log"
# The compose file's image name, so that podman-compose runs this build (--no-build).
podman tag "$GAN_IMAGE" localhost/mnist-digit-gan:latest
log "images ready ($(elapsed "$started") s)"

GAN_ADMIN_TOKEN="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
GAN_PROXY_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export GAN_ADMIN_TOKEN GAN_PROXY_PORT

started="$(date +%s.%N)"
up_log="$(mktemp)"
timeout 180 "${COMPOSE[@]}" up -d --no-build >"$up_log" 2>&1 || {
  grep -v systemd "$up_log" | tail -30
  die "podman-compose up failed"
}
rm -f "$up_log"
log "podman-compose up: $(podman ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}' | sort | tr '\n' ' ')($(elapsed "$started") s)"

reload_interval="$(python3 -c 'import re, sys; print(re.search(r"GAN_RELOAD_INTERVAL_S: \"([\d.]+)\"", open(sys.argv[1]).read()).group(1))' "$REPO_ROOT/docker-compose.replicas.yml")"
python3 "$REPO_ROOT/benchmarks/replicas.py" --project "$PROJECT" --proxy-port "$GAN_PROXY_PORT" \
  --token "$GAN_ADMIN_TOKEN" --reload-interval "$reload_interval" --json "$RESULTS" \
  ${SCENARIOS:+--scenarios "$SCENARIOS"}
log "PASS replicas-test in $(elapsed "$STARTED_ALL") s; results in ${RESULTS#"$REPO_ROOT"/}"
