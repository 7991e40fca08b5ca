"""The peers benchmark's servers answer what the project answers, and its reports and the GPU
check's plan hold together (no server process, no wrk, no GPU needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
for folder in (BENCHMARKS, BENCHMARKS / "peers"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # last: never shadows a module of the project

import naive_server  # noqa: E402
import peer_common  # noqa: E402

import gpu_check  # noqa: E402
import serving_peers  # noqa: E402
from gan.store import ModelStore  # noqa: E402
from harness import peers  # noqa: E402
from harness.goodput import GoodputLoad, GoodputRow  # noqa: E402
from harness.hostile_scenarios import Watch  # noqa: E402

BODY = {"digit": 7, "seed": 42, "format": "png"}


def test_naive_peer_sends_the_projects_png(client: TestClient, tiny_store: ModelStore) -> None:
    ours = client.post("/generate", json=BODY)
    loaded = peer_common.load_active(tiny_store.root, "cpu")
    with TestClient(naive_server.create_app(loaded, "cpu")) as naive:
        assert naive.get("/readyz").status_code == 200
        theirs = naive.post("/generate", json=BODY)
        assert naive.post("/generate", json={**BODY, "digit": 10}).status_code == 422
    assert ours.status_code == theirs.status_code == 200
    assert theirs.headers["content-type"] == "image/png"
    assert theirs.headers["x-seed"] == "42"
    assert theirs.content == ours.content


def test_litserve_peer_sends_the_projects_png(client: TestClient, tiny_store: ModelStore) -> None:
    import litserve_server  # litserve is a dev dependency: this test runs wherever the suite does

    api = litserve_server.GeneratorAPI(tiny_store.root, torch_threads=torch.get_num_threads())
    api.setup("cpu")
    requests = [api.decode_request(BODY), api.decode_request({**BODY, "seed": 43})]
    outputs = api.unbatch(api.predict(api.batch(requests)))
    first = api.encode_response(outputs[0])
    assert first.media_type == "image/png"
    assert first.body == client.post("/generate", json=BODY).content
    assert outputs[1][2] == 43


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"digit": 10}, "digit"),
        ({"digit": True}, "digit"),
        ({"seed": -1}, "seed"),
        ({"format": "base64"}, "png"),
        ({"n": 2}, "unknown"),
        ([], "object"),
    ],
)
def test_peer_request_checks(body: object, problem: str) -> None:
    with pytest.raises(peer_common.BadRequest, match=problem):
        peer_common.parse_request(body)


def _cell(server: str, concurrency: int, rate: float, round_index: int = 0) -> peers.Cell:
    return peers.Cell(
        server, concurrency, 2.0, int(rate * 2), rate, 1.0, 2.0, 0, {}, 0.5, 1, 1, round_index
    )


def test_ratios_and_table() -> None:
    cells = [_cell("project", 8, 400), _cell("litserve", 8, 200), _cell("naive", 8, 100)]
    cells.append(_cell("project", 32, 300))
    ratios = peers.ratios(cells, [8, 32])
    assert ratios["project/litserve"] == {"8": 2.0, "32": None}
    assert ratios["project/naive"]["8"] == 4.0
    table = peers.table(cells, list(peers.SERVERS), [8, 32])
    assert "| 8 | 400.0 | 1.0 / 2.0 | 200.0 |" in table
    assert table.splitlines()[-1].endswith("| - | - | - | - | - | - |")


def test_ratios_are_taken_within_rounds_then_the_median() -> None:
    # The machine's speed drifts between rounds: the ratios within them are 2, 2 and 8, and
    # their median 2, while the ratio of the median rates (400 / 100) would read 4.
    rates = [(400, 200), (200, 100), (800, 100)]
    cells = [
        cell
        for index, (ours, theirs) in enumerate(rates)
        for cell in (_cell("project", 8, ours, index), _cell("litserve", 8, theirs, index))
    ]
    assert [r["project/litserve"]["8"] for r in peers.round_ratios(cells, [8])] == [2.0, 2.0, 8.0]
    assert peers.ratios(cells, [8])["project/litserve"]["8"] == 2.0
    median = peers.find(cells, "project", 8)
    assert median is not None and median.requests_per_s == 400 and median.requests == 2800


def _n64_row(concurrency: int, requests: int) -> GoodputRow:
    load = GoodputLoad(concurrency, 1.0, {200: requests}, {}, None, None)
    return GoodputRow("on", load, Watch(), 0.0, None, None, {})


def test_n64_pairs_are_held_to_their_own_raw_pass() -> None:
    # Best of the series 40 requests = 2,560 images/s against the best raw pass (3,200): 80 %.
    # The slices, each between two raw slices: 90, 75 and 95 % of their mean, median 90 %; the
    # server's own forward pass in them 95, 80 and 100 %.
    series = [_n64_row(1, 30), _n64_row(4, 40), _n64_row(16, 35)]
    raws = [{"forward_images_per_s": 2000.0, "end_to_end_images_per_s": 1900.0},
            {"forward_images_per_s": 3200.0, "end_to_end_images_per_s": 3000.0}]  # fmt: skip
    pairs = [
        serving_peers.pair_record(4, before, after, served, forward)
        for before, after, served, forward in (
            (1800.0, 2200.0, 1800.0, 1900.0),
            (3200.0, 3200.0, 2400.0, 2560.0),
            (2100.0, 1900.0, 1900.0, 2000.0),
        )
    ]
    assert [pair["raw_images_per_s"] for pair in pairs] == [2000.0, 3200.0, 2000.0]
    summary = serving_peers.n64_summary(series, raws, 4, pairs)
    assert summary is not None
    assert summary["pct_of_raw_forward"] == 80.0
    assert summary["paired_pcts"] == [90.0, 75.0, 95.0]
    assert summary["paired_pct_of_raw_forward"] == 90.0
    assert summary["paired_forward_pcts"] == [95.0, 80.0, 100.0]
    assert summary["overload_pct_of_best"] == 87.5  # c=16: 35 of 40
    rounds = serving_peers.n64_median([summary, {**summary, "paired_pct_of_raw_forward": 70.0}])
    assert rounds is not None and rounds["paired_pct_of_raw_forward"] == 80.0
    lines = serving_peers.n64_lines(summary, 1, "")
    assert any("in 3 slices at c=4" in line and "median 90%" in line for line in lines)
    assert any("own forward pass" in line and "median 95%" in line for line in lines)


def test_gpu_check_plans_and_refuses_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    dry = gpu_check.make_plan(gpu_check.parse_args(["--device", "cpu"]))
    assert dry.dry and dry.dtypes == ["float32"] and dry.batches == gpu_check.DRY_BATCHES
    real = gpu_check.make_plan(gpu_check.parse_args(["--device", "cuda"]))
    assert real.batches == "1,16,256,1024,4096,16384" and real.dtypes == ["float32", "bfloat16"]
    assert real.train_steps == 200 and real.compile_mode == "reduce-overhead"
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--device", "cuda"]) == gpu_check.NO_CUDA_EXIT
    assert "no CUDA device" in capsys.readouterr().err
