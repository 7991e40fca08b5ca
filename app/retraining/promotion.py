"""The quality gates: may a version replace the active one? Every activation asks them (an
operator overrides with ``force``); with ``GAN_PROMOTION=auto`` a finished job that passes them
is activated by itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.config import Settings
from gan.store import JUDGE_DIR

GATED_METRICS = ("conditional_accuracy", "recall", "diversity", "fid")


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    text: str  # the comparison with its numbers, e.g. "recall 0.7120 >= active 0.8121 - 0.005"


@dataclass
class Decision:
    promote: bool
    policy: str
    reasons: list[str] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GatesFailedError(Exception):
    """Activating this version would serve something worse than the active one."""

    def __init__(self, version: str, failed: list[Gate]) -> None:
        names = ", ".join(gate.text for gate in failed)
        super().__init__(
            f"{version!r} fails the quality gates against the active version ({names}); "
            'activate with {"force": true} to serve it anyway'
        )
        self.extra = {"gates": [asdict(gate) for gate in failed]}


def evaluate_gates(settings: Settings, new: dict[str, Any], active: dict[str, Any]) -> list[Gate]:
    """Every gate of ``new`` metrics against the floors and the ``active`` version's metrics:
    the project classifier's, then the independent judge's wherever the active version has
    them (the judge's scores are a manifest's ``metrics["judge"]``), so that a version tuned to
    the one classifier cannot pass on its word alone."""
    missing = missing_metrics(new)
    if missing:
        return [Gate("evaluated", False, f"the version has no metrics {missing}: evaluate it")]
    accuracy, recall = new["conditional_accuracy"], new["recall"]
    floor = settings.gate_min_conditional_accuracy
    gates = [
        Gate(
            "min_conditional_accuracy",
            accuracy >= floor,
            f"conditional accuracy {accuracy:.4f} >= {floor}",
        ),
        Gate(
            "min_recall",
            recall >= settings.gate_min_recall,
            f"recall {recall:.4f} >= {settings.gate_min_recall}",
        ),
        *against_active(settings, new, active, ""),
    ]
    judged_active, judged_new = active.get(JUDGE_DIR), new.get(JUDGE_DIR)
    if not isinstance(judged_active, dict):
        return gates
    if not isinstance(judged_new, dict) or missing_metrics(judged_new):
        text = (
            f"the active version is scored by the independent {JUDGE_DIR} and this one is not: "
            f"evaluate it (python -m training evaluate VERSION --evaluator {JUDGE_DIR})"
        )
        return [*gates, Gate(f"{JUDGE_DIR}_evaluated", False, text)]
    return [*gates, *against_active(settings, judged_new, judged_active, JUDGE_DIR)]


def missing_metrics(metrics: dict[str, Any]) -> list[str]:
    return [key for key in GATED_METRICS if not isinstance(metrics.get(key), int | float)]


def against_active(
    settings: Settings, new: dict[str, Any], active: dict[str, Any], evaluator: str
) -> list[Gate]:
    """The gates comparing one evaluator's scores of ``new`` with its scores of ``active``:
    accuracy, recall and diversity within the tolerance, FID within the ratio. ``evaluator``
    prefixes the gates' names and texts ("" for the project classifier)."""
    name = f"{evaluator}_" if evaluator else ""
    by = f"{evaluator} " if evaluator else ""
    new_weights, active_weights = new.get("classifier_sha256"), active.get("classifier_sha256")
    if (
        isinstance(new_weights, str)
        and isinstance(active_weights, str)
        and new_weights != active_weights
    ):
        text = (
            f"{by or 'classifier '}scores from other weights (sha256 {new_weights[:12]}, the "
            f"active version's {active_weights[:12]}) do not compare: evaluate both with the "
            "store's"
        )
        return [Gate(name + "same_evaluator", False, text)]
    tolerance = settings.gate_tolerance
    gates = []
    for key in ("conditional_accuracy", "recall", "diversity"):
        if isinstance(active.get(key), int | float):
            gates.append(
                Gate(
                    name + key,
                    new[key] >= active[key] - tolerance,
                    f"{by}{key} {new[key]:.4f} >= active {active[key]:.4f} - {tolerance}",
                )
            )
    if isinstance(active.get("fid"), int | float):
        limit = active["fid"] * settings.gate_max_fid_ratio
        gates.append(
            Gate(
                name + "fid",
                new["fid"] <= limit,
                f"{by}FID {new['fid']:.3f} <= {settings.gate_max_fid_ratio} x active "
                f"{active['fid']:.3f}",
            )
        )
    return gates


def decide(settings: Settings, new: dict[str, Any], active: dict[str, Any]) -> Decision:
    """After a job: manual never activates (the operator decides, the gates are shown); auto
    activates only if every gate passes."""
    gates = evaluate_gates(settings, new, active)
    reasons = [("pass: " if gate.passed else "fail: ") + gate.text for gate in gates]
    if settings.promotion == "manual":
        return Decision(
            False, "manual", ["policy is manual: the operator activates", *reasons], gates
        )
    return Decision(all(gate.passed for gate in gates), "auto", reasons, gates)


def check_activation(
    settings: Settings, version: str, new: dict[str, Any], active: dict[str, Any]
) -> list[Gate]:
    """The gates of activating ``version``; ``GatesFailedError`` if any fails."""
    gates = evaluate_gates(settings, new, active)
    failed = [gate for gate in gates if not gate.passed]
    if failed:
        raise GatesFailedError(version, failed)
    return gates
