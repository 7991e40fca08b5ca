#!/usr/bin/env bash
# `make container-test`: build the image from the real Dockerfile, run it, check it from outside.
#
#   1. podman (+ runc, debootstrap) installed if missing; SKIP (exit 0) only where it cannot be;
#   2. stand-in base images (python:3.11-slim, nginx:1.27-alpine) from a cached debootstrap rootfs;
#   3. the project image built from ./Dockerfile, its size reported;
#   4. a container run as Kubernetes runs it (read-only root, all capabilities dropped, named
#      volumes on the store and state dirs) must be ready within the HEALTHCHECK start period,
#      serve the README's PNG, run as uid 10001, pass `podman healthcheck run`, and on SIGTERM
#      drain (/readyz 503, still serving), answer every in-flight request and exit 0 within
#      GAN_DRAIN_S + GAN_GRACEFUL_SHUTDOWN_S;
#   5. the Kubernetes init container's store seeding (deploy/kubernetes/seed-store.py) in the image.
# Every line it prints starts with [container-test HH:MM:SS]; PASS/FAIL lines carry the numbers.
set -euo pipefail
LOG_TAG=container-test
# shellcheck source=deploy/container/lib.sh
source "$(dirname "$0")/lib.sh"

DRAIN_S="${GAN_TEST_DRAIN_S:-2}"
GRACE_S="${GAN_TEST_GRACEFUL_SHUTDOWN_S:-15}"
RUN_ID="gan-ct-$$"
CONTAINER="$RUN_ID"
STARTED_ALL="$(date +%s.%N)"

cleanup() {
  local rc=$?
  podman rm -f --time 0 "$CONTAINER" >/dev/null 2>&1 || true
  podman volume rm -f "$RUN_ID-store" "$RUN_ID-state" "$RUN_ID-seed" >/dev/null 2>&1 || true
  [ $rc = 0 ] || log "FAIL (exit $rc) after $(elapsed "$STARTED_ALL") s; container logs above if any"
}
trap cleanup EXIT
trap 'exit 143' TERM INT # `timeout` in the Makefile: still clean up

started="$(date +%s.%N)"
if ! ensure_podman; then
  log "SKIP: no container runtime can be installed on this machine (see above); nothing was built"
  exit 0
fi
log "podman $(podman version --format '{{.Client.Version}}') with $(runc --version | head -1) ($(elapsed "$started") s)"

started="$(date +%s.%N)"
ensure_standins
log "stand-in bases ready: $PYTHON_IMAGE, $NGINX_IMAGE ($(elapsed "$started") s)"

started="$(date +%s.%N)"
build_log="$(mktemp)"
if ! build_project_image >"$build_log" 2>&1; then
  tail -40 "$build_log"
  rm -f "$build_log"
  die "podman build failed"
fi
cached="$(grep -c 'Using cache' "$build_log" || true)"
rm -f "$build_log"
size_bytes="$(podman image inspect --format '{{.Size}}' "$GAN_IMAGE")"
size_mib=$((size_bytes / 1048576))
log "PASS image built from ./Dockerfile in $(elapsed "$started") s ($cached cached steps): $GAN_IMAGE, $size_mib MiB"
layers="$(podman history --format '{{.Size}}\t{{.CreatedBy}}' "$GAN_IMAGE" | awk -F'\t' '$1 !~ /^0 B/ { printf "%s | ", $1 }')"
log "      layers (newest first): ${layers% | }"

user="$(podman image inspect --format '{{.Config.User}}' "$GAN_IMAGE")"
[ "$user" = "10001:10001" ] || die "image USER is '$user', not 10001:10001"
healthcheck="$(podman image inspect --format '{{json .Config.Healthcheck}}' "$GAN_IMAGE")"
case "$healthcheck" in *"/healthz"*) ;; *) die "image HEALTHCHECK is not the /healthz liveness check: $healthcheck" ;; esac
start_period_s="$(podman image inspect --format '{{json .Config.Healthcheck.StartPeriod}}' "$GAN_IMAGE" \
  | awk '{ printf "%d", $1 / 1e9 }')"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
podman volume create "$RUN_ID-store" >/dev/null
podman volume create "$RUN_ID-state" >/dev/null
started="$(date +%s.%N)"
podman run -d --name "$CONTAINER" -p "127.0.0.1:$port:8000" \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -v "$RUN_ID-store:/srv/model_store" -v "$RUN_ID-state:/srv/var" \
  -e GAN_ADMIN_TOKEN=container-test -e "GAN_DRAIN_S=$DRAIN_S" -e "GAN_GRACEFUL_SHUTDOWN_S=$GRACE_S" \
  "$GAN_IMAGE" >/dev/null

ready=""
deadline=$(($(date +%s) + start_period_s))
while [ "$(date +%s)" -le "$deadline" ]; do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz")" = 200 ]; then
    ready="$(elapsed "$started")"
    break
  fi
  [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  podman logs --tail 30 "$CONTAINER" || true
  die "/readyz not 200 within the ${start_period_s} s start period"
fi
log "PASS /readyz 200 $ready s after podman run (start period ${start_period_s} s)"

png="$(mktemp)"
read -r code ctype < <(curl -s -o "$png" -w '%{http_code} %{content_type}\n' --max-time 10 \
  -X POST "http://127.0.0.1:$port/generate" -H 'Content-Type: application/json' \
  -d '{"digit":7,"seed":1,"format":"png"}')
signature="$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')"
png_bytes="$(stat -c %s "$png")"
rm -f "$png"
[ "$code" = 200 ] && [ "$ctype" = image/png ] && [ "$signature" = 89504e470d0a1a0a ] \
  || die "POST /generate: HTTP $code, $ctype, signature $signature"
log "PASS POST /generate {digit 7, seed 1, png}: 200 image/png, $png_bytes bytes, PNG signature"

host_uid="$(podman top "$CONTAINER" huser | awk 'NR == 2 { print $1 }')"
uid="$(podman exec "$CONTAINER" id -u)"
[ "$uid" = 10001 ] && [ "$host_uid" = 10001 ] || die "the service runs as uid $uid (host $host_uid), not 10001"
log "PASS the service runs as uid $uid (host uid $host_uid), read-only root, no capabilities"

store_owner="$(podman exec "$CONTAINER" stat -c %u:%g /srv/model_store /srv/var | tr '\n' ' ')"
[ "$store_owner" = "10001:10001 10001:10001 " ] || die "volumes owned by $store_owner, not 10001:10001"
podman exec "$CONTAINER" sh -c 'touch /srv/model_store/.write-test /srv/var/.write-test && rm /srv/model_store/.write-test /srv/var/.write-test' \
  || die "the service user cannot write its volumes"
log "PASS named volumes on /srv/model_store and /srv/var are owned by and writable for 10001"

hc_out="$(podman healthcheck run "$CONTAINER" 2>&1)" || die "podman healthcheck run: ${hc_out:-unhealthy}"
hc="$(podman inspect --format '{{.State.Health.Status}}' "$CONTAINER")"
[ "$hc" = healthy ] || die "health status after podman healthcheck run: $hc"
log "PASS podman healthcheck run: exit 0, status $hc (the image's HEALTHCHECK on /healthz)"

# Kubernetes has no copy-up: its init container seeds an empty store volume from the image
# (deploy/kubernetes/seed-store.py). Run it here in the image, twice, as the pods would (":U" is
# podman's stand-in for the pod's fsGroup).
podman volume create "$RUN_ID-seed" >/dev/null
seed=(podman run --rm --read-only --cap-drop ALL --security-opt no-new-privileges
  -v "$RUN_ID-seed:/mnt/model-store:U" -v "$REPO_ROOT/deploy/kubernetes/seed-store.py:/opt/seed/seed-store.py:ro"
  "$GAN_IMAGE" python /opt/seed/seed-store.py)
first="$("${seed[@]}" 2>&1)" || die "seed-store.py failed: $first"
again="$("${seed[@]}" 2>&1)" || die "seed-store.py failed on a seeded store: $again"
# What the image ships: every entry of the repository's model_store, in seed-store.py's order.
shipped_entries="$(find "$REPO_ROOT/model_store" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' \
  | LC_ALL=C sort | paste -sd, - | sed 's/,/, /g')"
shipped_active="$(cat "$REPO_ROOT/model_store/ACTIVE")"
case "$first|$again" in
  *"seeded $shipped_entries, ACTIVE; active $shipped_active|"*"seeded nothing"*) ;;
  *) die "seed-store.py: '$first' then '$again'" ;;
esac
log "PASS deploy/kubernetes/seed-store.py in the image: ${first#*: }; again: ${again#*: }"

report="$(python3 "$CONTAINER_DIR/inflight.py" --port "$port" --requests 8 \
  --signal-command "podman kill --signal TERM $CONTAINER")" || {
  echo "$report"
  podman logs --tail 30 "$CONTAINER" || true
  die "requests in flight at SIGTERM were not all answered"
}
signalled_at="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["signalled_at"])' "$report")"
limit_s=$(awk -v d="$DRAIN_S" -v g="$GRACE_S" 'BEGIN { printf "%d", d + g + 5 }')
timeout "$limit_s" podman wait "$CONTAINER" >/dev/null || die "still running ${limit_s} s after SIGTERM"
stopped_after="$(awk -v a="$signalled_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
[ "$exit_code" = 0 ] || die "exit code $exit_code after SIGTERM"
python3 - "$report" "$DRAIN_S" <<'EOF' || die "drain check failed: $report"
import json, sys
r, drain = json.loads(sys.argv[1]), float(sys.argv[2])
assert r["answered_after_signal"] >= 1, "no request was still in flight at SIGTERM"
assert r["readyz_after_signal"] == 503, f"/readyz was {r['readyz_after_signal']} while draining"
assert drain == 0 or r["new_request_during_drain"] == 200, "a request during the drain failed"
EOF
summary="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["summary"])' "$report")"
log "PASS SIGTERM: $summary; exit code 0 after $stopped_after s (drain ${DRAIN_S} s + grace ${GRACE_S} s)"
podman logs "$CONTAINER" 2>&1 | grep -q '"Finished server process' || die "no clean uvicorn shutdown in the logs"

log "PASS container-test in $(elapsed "$STARTED_ALL") s"
