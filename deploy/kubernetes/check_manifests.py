"""What a schema cannot check in the rendered manifests: that they agree with the app and
each other.

    kubectl kustomize deploy/kubernetes > rendered.yaml
    python deploy/kubernetes/check_manifests.py rendered.yaml

Checked: the API rollout (RollingUpdate, maxSurge 1, maxUnavailable 0); every probe on the
endpoint its purpose needs (startup and liveness /healthz, readiness /readyz); each grace period
covering GAN_DRAIN_S + GAN_GRACEFUL_SHUTDOWN_S (+ GAN_JOB_CANCEL_GRACE_S where jobs run, + any
preStop sleep) + 5 s; requests and memory limits on every container; the image's uid; the model
store on a ReadWriteMany claim mounted by both Deployments; the admin token only from a Secret;
the admin on one GPU running jobs with torchrun; the PDB, HPA, Services and Ingresses pointing at
what exists. Exits 1 with the failed checks listed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

IMAGE_UID = 10001  # the Dockerfile's USER
MARGIN_S = 5


def main(path: str) -> int:
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    by_kind: dict[tuple[str, str], dict[str, Any]] = {
        (d["kind"], d["metadata"]["name"]): d for d in docs
    }

    def one(kind: str, prefix: str) -> dict[str, Any]:
        found = [d for (k, n), d in by_kind.items() if k == kind and n.startswith(prefix)]
        if len(found) != 1:
            raise SystemExit(f"FAIL: expected one {kind} {prefix}*, found {len(found)}")
        return found[0]

    settings = one("ConfigMap", "gan-settings")["data"]
    api, admin = one("Deployment", "gan-api"), one("Deployment", "gan-admin")
    results: list[tuple[str, bool]] = []

    def check(name: str, condition: Callable[[], bool]) -> None:
        try:
            ok = bool(condition())
        except (KeyError, IndexError, TypeError, ValueError, StopIteration):
            ok = False
        results.append((name, ok))

    def container(deployment: dict[str, Any]) -> dict[str, Any]:
        return deployment["spec"]["template"]["spec"]["containers"][0]

    def env(deployment: dict[str, Any]) -> dict[str, str]:
        values = dict(settings)
        values.update({e["name"]: e["value"] for e in container(deployment).get("env", [])})
        return values

    def prestop_s(deployment: dict[str, Any]) -> float:
        hook = container(deployment).get("lifecycle", {}).get("preStop", {})
        return float(hook.get("sleep", {}).get("seconds", 0))

    rolling = api["spec"]["strategy"]
    check("api: RollingUpdate", lambda: rolling["type"] == "RollingUpdate")
    check("api: maxSurge 1", lambda: rolling["rollingUpdate"]["maxSurge"] == 1)
    check("api: maxUnavailable 0", lambda: rolling["rollingUpdate"]["maxUnavailable"] == 0)
    check(
        "admin: Recreate (one jobs database owner)",
        lambda: admin["spec"]["strategy"]["type"] == "Recreate",
    )
    check("admin: one replica", lambda: admin["spec"]["replicas"] == 1)

    for label, deployment in (("api", api), ("admin", admin)):
        c, pod = container(deployment), deployment["spec"]["template"]["spec"]
        values = env(deployment)
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
        ):
            check(
                f"{label}: {probe} on {path}",
                lambda c=c, probe=probe, path=path: c[probe]["httpGet"]["path"] == path,
            )
        needed = float(values["GAN_DRAIN_S"]) + float(values["GAN_GRACEFUL_SHUTDOWN_S"])
        needed += prestop_s(deployment) + MARGIN_S
        if label == "admin":
            needed += float(values["GAN_JOB_CANCEL_GRACE_S"])
        check(
            f"{label}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} "
            f">= {needed:g} (drain + graceful shutdown{' + job cancel' if label == 'admin' else ''}"
            f" + preStop + {MARGIN_S})",
            lambda pod=pod, needed=needed: pod["terminationGracePeriodSeconds"] >= needed,
        )
        check(
            f"{label}: drain shorter than the grace period",
            lambda pod=pod, values=values: (
                float(values["GAN_DRAIN_S"]) < pod["terminationGracePeriodSeconds"]
            ),
        )
        for each in pod.get("initContainers", []) + pod["containers"]:
            check(
                f"{label}/{each['name']}: cpu and memory requests, memory limit",
                lambda each=each: (
                    {"cpu", "memory"} <= set(each["resources"]["requests"])
                    and "memory" in each["resources"]["limits"]
                ),
            )
            check(
                f"{label}/{each['name']}: no privilege escalation, read-only root",
                lambda each=each: (
                    each["securityContext"]["allowPrivilegeEscalation"] is False
                    and each["securityContext"]["readOnlyRootFilesystem"] is True
                ),
            )
        check(
            f"{label}: runs as the image's uid {IMAGE_UID}, fsGroup for the volumes",
            lambda pod=pod: (
                pod["securityContext"]["runAsUser"] == IMAGE_UID
                and pod["securityContext"]["fsGroup"] == IMAGE_UID
                and pod["securityContext"]["runAsNonRoot"] is True
            ),
        )
        check(
            f"{label}: model store on gan-model-store at GAN_MODEL_STORE",
            lambda pod=pod, c=c, values=values: any(
                v.get("persistentVolumeClaim", {}).get("claimName") == "gan-model-store"
                and any(
                    m["name"] == v["name"] and m["mountPath"] == values["GAN_MODEL_STORE"]
                    for m in c["volumeMounts"]
                )
                for v in pod["volumes"]
            ),
        )
        check(
            f"{label}: admin token file from a Secret, no literal token",
            lambda pod=pod, c=c, values=values: (
                "GAN_ADMIN_TOKEN" not in values
                and any(
                    "secret" in v
                    and any(
                        m["name"] == v["name"]
                        and values["GAN_ADMIN_TOKEN_FILE"].startswith(m["mountPath"] + "/")
                        for m in c["volumeMounts"]
                    )
                    for v in pod["volumes"]
                )
            ),
        )
        check(
            f"{label}: torch threads within the CPU request",
            lambda c=c, values=values: (
                int(values["GAN_TORCH_THREADS"]) <= float(c["resources"]["requests"]["cpu"])
            ),
        )

    store = one("PersistentVolumeClaim", "gan-model-store")
    check("model store: ReadWriteMany", lambda: store["spec"]["accessModes"] == ["ReadWriteMany"])
    gpu = container(admin)["resources"]
    check(
        "admin: requests and limits nvidia.com/gpu 1",
        lambda: (
            int(gpu["limits"]["nvidia.com/gpu"]) == 1
            and int(gpu["requests"]["nvidia.com/gpu"]) == 1
        ),
    )
    check(
        "admin: jobs run with torchrun, one process per GPU",
        lambda: (
            json.loads(env(admin)["GAN_TRAINING_COMMAND"])[:2]
            == ["torchrun", f"--nproc_per_node={int(gpu['limits']['nvidia.com/gpu'])}"]
        ),
    )
    check("admin: CUDA device", lambda: env(admin)["GAN_DEVICE"] == "cuda")

    api_labels = api["spec"]["template"]["metadata"]["labels"]
    pdb, hpa = one("PodDisruptionBudget", "gan-api"), one("HorizontalPodAutoscaler", "gan-api")
    check(
        "pdb: selects the API pods",
        lambda: pdb["spec"]["selector"]["matchLabels"].items() <= api_labels.items(),
    )
    check(
        "hpa: targets gan-api; 2+ API pods left while the PDB lets one go",
        lambda: (
            hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
            and hpa["spec"]["minReplicas"] - pdb["spec"]["maxUnavailable"] >= 2
        ),
    )
    check("api: no replicas field (the HPA owns it)", lambda: "replicas" not in api["spec"])
    for service_name, deployment in (("gan-api", api), ("gan-admin", admin)):
        service = one("Service", service_name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        check(
            f"service {service_name}: selects its pods, targets the http port",
            lambda service=service, labels=labels, deployment=deployment: (
                service["spec"]["selector"].items() <= labels.items()
                and all(
                    p["targetPort"] in [q["name"] for q in container(deployment)["ports"]]
                    for p in service["spec"]["ports"]
                )
            ),
        )
    services = {n for (k, n) in by_kind if k == "Service"}
    for (kind, name), doc in by_kind.items():
        if kind != "Ingress":
            continue
        backends = [
            p["backend"]["service"]["name"]
            for rule in doc["spec"]["rules"]
            for p in rule["http"]["paths"]
        ]
        check(
            f"ingress {name}: backends exist ({', '.join(backends)})",
            lambda backends=backends: set(backends) <= services,
        )

    failed = [name for name, ok in results if not ok]
    for name, ok in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    # Not "N passed, N failed": CI reads that shape as a test runner's closing line.
    print(f"manifest checks: {len(results) - len(failed)} ok, {len(failed)} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
