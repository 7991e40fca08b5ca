"""The quality gates: may a version replace the active one? Every activation asks them (an
operator overrides with ``force``); with ``GAN_PROMOTION=auto`` a finished job that passes them
is activated by itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.config import Settings

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
    """Every gate of ``new`` metrics against the floors and the ``active`` version's metrics."""
    missing = [key for key in GATED_METRICS if not isinstance(new.get(key), int | float)]
    if missing:
        return [Gate("evaluated", False, f"the version has no metrics {missing}: evaluate it")]
    tolerance = settings.gate_tolerance
    accuracy, recall, fid = new["conditional_accuracy"], new["recall"], new["fid"]
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
    ]
    for key in ("conditional_accuracy", "recall", "diversity"):
        if isinstance(active.get(key), int | float):
            gates.append(
                Gate(
                    key,
                    new[key] >= active[key] - tolerance,
                    f"{key} {new[key]:.4f} >= active {active[key]:.4f} - {tolerance}",
                )
            )
    if isinstance(active.get("fid"), int | float):
        limit = active["fid"] * settings.gate_max_fid_ratio
        gates.append(
            Gate(
                "fid",
                fid <= limit,
                f"FID {fid:.3f} <= {settings.gate_max_fid_ratio} x active {active['fid']:.3f}",
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
