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

Doc = dict[str, Any]
Check = Callable[[str, Callable[[], bool]], None]


class Manifests:
    """The rendered documents by (kind, name), and each check's outcome in the order run."""

    def __init__(self, docs: list[Doc]) -> None:
        self.by_kind: dict[tuple[str, str], Doc] = {
            (d["kind"], d["metadata"]["name"]): d for d in docs
        }
        self.results: list[tuple[str, bool]] = []

    def one(self, kind: str, prefix: str) -> Doc:
        found = [d for (k, n), d in self.by_kind.items() if k == kind and n.startswith(prefix)]
        if len(found) != 1:
            raise SystemExit(f"FAIL: expected one {kind} {prefix}*, found {len(found)}")
        return found[0]

    def check(self, name: str, condition: Callable[[], bool]) -> None:
        try:
            ok = bool(condition())
        except (KeyError, IndexError, TypeError, ValueError, StopIteration):
            ok = False
        self.results.append((name, ok))


def container(deployment: Doc) -> Doc:
    first: Doc = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def env(settings: dict[str, str], deployment: Doc) -> dict[str, str]:
    values = dict(settings)
    values.update({e["name"]: e["value"] for e in container(deployment).get("env", [])})
    return values


def prestop_s(deployment: Doc) -> float:
    hook = container(deployment).get("lifecycle", {}).get("preStop", {})
    return float(hook.get("sleep", {}).get("seconds", 0))


def check_strategies(check: Check, api: Doc, admin: Doc) -> None:
    rolling = api["spec"]["strategy"]
    check("api: RollingUpdate", lambda: rolling["type"] == "RollingUpdate")
    check("api: maxSurge 1", lambda: rolling["rollingUpdate"]["maxSurge"] == 1)
    check("api: maxUnavailable 0", lambda: rolling["rollingUpdate"]["maxUnavailable"] == 0)
    check(
        "admin: Recreate (one jobs database owner)",
        lambda: admin["spec"]["strategy"]["type"] == "Recreate",
    )
    check("admin: one replica", lambda: admin["spec"]["replicas"] == 1)


def check_probe(check: Check, label: str, c: Doc, probe: str, path: str) -> None:
    check(f"{label}: {probe} on {path}", lambda: c[probe]["httpGet"]["path"] == path)


def check_grace(check: Check, label: str, deployment: Doc, values: dict[str, str]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    needed = float(values["GAN_DRAIN_S"]) + float(values["GAN_GRACEFUL_SHUTDOWN_S"])
    needed += prestop_s(deployment) + MARGIN_S
    if label == "admin":
        needed += float(values["GAN_JOB_CANCEL_GRACE_S"])
    check(
        f"{label}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} "
        f">= {needed:g} (drain + graceful shutdown{' + job cancel' if label == 'admin' else ''}"
        f" + preStop + {MARGIN_S})",
        lambda: pod["terminationGracePeriodSeconds"] >= needed,
    )
    check(
        f"{label}: drain shorter than the grace period",
        lambda: float(values["GAN_DRAIN_S"]) < pod["terminationGracePeriodSeconds"],
    )


def check_container(check: Check, label: str, each: Doc) -> None:
    check(
        f"{label}/{each['name']}: cpu and memory requests, memory limit",
        lambda: (
            {"cpu", "memory"} <= set(each["resources"]["requests"])
            and "memory" in each["resources"]["limits"]
        ),
    )
    check(
        f"{label}/{each['name']}: no privilege escalation, read-only root",
        lambda: (
            each["securityContext"]["allowPrivilegeEscalation"] is False
            and each["securityContext"]["readOnlyRootFilesystem"] is True
        ),
    )


def check_pod(check: Check, label: str, pod: Doc, c: Doc, values: dict[str, str]) -> None:
    """The pod's uid, its model store and admin token volumes, its torch threads."""
    check(
        f"{label}: runs as the image's uid {IMAGE_UID}, fsGroup for the volumes",
        lambda: (
            pod["securityContext"]["runAsUser"] == IMAGE_UID
            and pod["securityContext"]["fsGroup"] == IMAGE_UID
            and pod["securityContext"]["runAsNonRoot"] is True
        ),
    )
    check(
        f"{label}: model store on gan-model-store at GAN_MODEL_STORE",
        lambda: any(
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
        lambda: (
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
        lambda: int(values["GAN_TORCH_THREADS"]) <= float(c["resources"]["requests"]["cpu"]),
    )


def check_deployment(check: Check, label: str, deployment: Doc, settings: dict[str, str]) -> None:
    c, pod = container(deployment), deployment["spec"]["template"]["spec"]
    values = env(settings, deployment)
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ):
        check_probe(check, label, c, probe, path)
    check_grace(check, label, deployment, values)
    for each in pod.get("initContainers", []) + pod["containers"]:
        check_container(check, label, each)
    check_pod(check, label, pod, c, values)


def check_admin_gpu(
    check: Check, manifests: Manifests, admin: Doc, settings: dict[str, str]
) -> None:
    store = manifests.one("PersistentVolumeClaim", "gan-model-store")
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
            json.loads(env(settings, admin)["GAN_TRAINING_COMMAND"])[:2]
            == ["torchrun", f"--nproc_per_node={int(gpu['limits']['nvidia.com/gpu'])}"]
        ),
    )
    check("admin: CUDA device", lambda: env(settings, admin)["GAN_DEVICE"] == "cuda")


def check_scaling(check: Check, manifests: Manifests, api: Doc) -> None:
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    pdb = manifests.one("PodDisruptionBudget", "gan-api")
    hpa = manifests.one("HorizontalPodAutoscaler", "gan-api")
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


def check_service(check: Check, service_name: str, service: Doc, deployment: Doc) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    check(
        f"service {service_name}: selects its pods, targets the http port",
        lambda: (
            service["spec"]["selector"].items() <= labels.items()
            and all(
                p["targetPort"] in [q["name"] for q in container(deployment)["ports"]]
                for p in service["spec"]["ports"]
            )
        ),
    )


def check_ingress(check: Check, name: str, doc: Doc, services: set[str]) -> None:
    backends = [
        p["backend"]["service"]["name"]
        for rule in doc["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]
    check(
        f"ingress {name}: backends exist ({', '.join(backends)})",
        lambda: set(backends) <= services,
    )


def main(path: str) -> int:
    manifests = Manifests([d for d in yaml.safe_load_all(Path(path).read_text()) if d])
    check = manifests.check
    settings: dict[str, str] = manifests.one("ConfigMap", "gan-settings")["data"]
    api, admin = manifests.one("Deployment", "gan-api"), manifests.one("Deployment", "gan-admin")
    check_strategies(check, api, admin)
    for label, deployment in (("api", api), ("admin", admin)):
        check_deployment(check, label, deployment, settings)
    check_admin_gpu(check, manifests, admin, settings)
    check_scaling(check, manifests, api)
    for service_name, deployment in (("gan-api", api), ("gan-admin", admin)):
        check_service(check, service_name, manifests.one("Service", service_name), deployment)
    services = {n for (k, n) in manifests.by_kind if k == "Service"}
    for (kind, name), doc in manifests.by_kind.items():
        if kind == "Ingress":
            check_ingress(check, name, doc, services)

    results = manifests.results
    failed = [name for name, ok in results if not ok]
    for name, ok in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    # Not "N passed, N failed": CI reads that shape as a test runner's closing line.
    print(f"manifest checks: {len(results) - len(failed)} ok, {len(failed)} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
