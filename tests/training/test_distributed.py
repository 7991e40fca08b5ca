"""Multi-process data parallel training through torchrun, on the CPU (gloo) and the fixture."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gan.store import ModelStore


@pytest.mark.slow
# The late twin's head gets no gradient at step 0: DDP must be told to expect unused parameters.
@pytest.mark.parametrize(("aux_classifier", "twin_from"), [("0", None), ("1.0", None), ("1.0", 1)])
def test_torchrun_two_processes_publish_one_version(
    tmp_path: Path, mnist_dir: Path, aux_classifier: str, twin_from: int | None
) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None, "torchrun ships with torch"
    store = tmp_path / "store"
    command = [
        torchrun, "--nproc_per_node=2", "-m", "training", "train",
        "--data-dir", str(mnist_dir), "--store", str(store), "--run-dir", str(tmp_path / "run"),
        "--steps", "3", "--batch-size", "8", "--latent-dim", "8", "--embed-dim", "4",
        "--g-channels", "8", "--d-channels", "8", "--device", "cpu", "--progress", "jsonl",
        "--version", "ddp", "--aux-classifier", aux_classifier, "--mode-seeking", "0.5",
        "--twin-classifier-from", "none" if twin_from is None else str(twin_from),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count('"event": "exported"') == 1  # rank 0 alone writes artifacts
    loaded = ModelStore(store).load_generator("ddp")
    assert loaded.manifest.training["aux_classifier_schedule"] == f"0:{float(aux_classifier)}"
    assert loaded.manifest.training["twin_classifier_from"] == twin_from
