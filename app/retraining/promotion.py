"""The promotion policy: should a freshly trained version replace the active one?"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.config import Settings


@dataclass
class Decision:
    promote: bool
    policy: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(settings: Settings, new: dict[str, Any], active: dict[str, Any]) -> Decision:
    """Manual: never. Auto: only if every gate passes; each gate adds a reason either way."""
    if settings.promotion == "manual":
        return Decision(
            False, "manual", ["policy is manual: activate with POST /models/{v}/activate"]
        )
    reasons: list[str] = []
    passed = True

    def gate(ok: bool, text: str) -> None:
        nonlocal passed
        passed &= ok
        reasons.append(("pass: " if ok else "fail: ") + text)

    missing = [k for k in ("conditional_accuracy", "recall", "diversity", "fid") if k not in new]
    if missing:
        return Decision(False, "auto", [f"fail: the new version has no metrics {missing}"])
    tolerance = settings.gate_tolerance
    accuracy, recall, fid = new["conditional_accuracy"], new["recall"], new["fid"]
    gate(
        accuracy >= settings.gate_min_conditional_accuracy,
        f"conditional accuracy {accuracy:.4f} >= {settings.gate_min_conditional_accuracy}",
    )
    gate(recall >= settings.gate_min_recall, f"recall {recall:.4f} >= {settings.gate_min_recall}")
    for key in ("conditional_accuracy", "recall", "diversity"):
        if key in active:
            gate(
                new[key] >= active[key] - tolerance,
                f"{key} {new[key]:.4f} >= active {active[key]:.4f} - {tolerance}",
            )
    if "fid" in active:
        limit = active["fid"] * settings.gate_max_fid_ratio
        gate(
            fid <= limit,
            f"FID {fid:.3f} <= {settings.gate_max_fid_ratio} x active {active['fid']:.3f}",
        )
    return Decision(passed, "auto", reasons)
