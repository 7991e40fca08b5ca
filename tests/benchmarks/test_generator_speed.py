"""The generator benchmark's side-by-side mode: both versions timed in one process, in
alternating pairs, and reported as medians and ratios (no timing is asserted, only the report's
shape and arithmetic)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gan.store import ModelStore
from gan.testing import publish_random_generator
from support.models import TINY_GENERATOR

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))  # last: never shadows a module of the project

import generator_speed  # noqa: E402


def test_against_times_both_versions_side_by_side(
    tiny_store: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_random_generator(tiny_store, "other", TINY_GENERATOR, seed=1)
    out = tmp_path / "speed.json"
    generator_speed.main(
        ["--store", str(tiny_store.root), "--version", "tiny", "--against", "other",
         "--batches", "1,4", "--rounds", "3", "--quick", "--json-out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| batch | tiny img/s | other img/s | ratio (median) |" in printed
    document = json.loads(out.read_text())
    assert document["against"]["baseline"] == "other"
    rows = document["against"]["rows"]
    assert [row["batch"] for row in rows] == [1, 4]
    for row in rows:
        assert row["rounds"] == 3
        assert 0 < row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
        assert row["images_per_s"] > 0 and row["baseline_images_per_s"] > 0


def test_an_unknown_baseline_names_the_store_s_versions(
    tiny_store: ModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is timed, with the versions the store has."""
    with pytest.raises(SystemExit, match=r"'missing' not found .*\(the store has: tiny\)"):
        generator_speed.main(
            ["--store", str(tiny_store.root), "--against", "missing", "--batches", "1", "--quick"]
        )
    assert "| batch |" not in capsys.readouterr().out
