"""Hostile clients against a real ``python -m app`` process: huge and slow request heads, idle
connections past the cap, non-finite JSON, a client that disconnects, SIGTERM draining, a
missing admin token file. Each reproduces a failure the service once had. The connection limits
run on both HTTP parsers (``GAN_HTTP_PARSER``), the other tests on the default one."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.http.server import httptools_installed
from gan.store import ModelStore
from support.process import ROOT, ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tiny_store: ModelStore, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(
        tiny_store.root, tmp_path, max_connections="40", header_timeout_s="2", drain_s="1.5"
    ) as process:
        yield process


@pytest.fixture(params=["httptools", "h11"])
def limited_server(
    request: pytest.FixtureRequest, tiny_store: ModelStore, tmp_path: Path
) -> Iterator[ServerProcess]:
    """The server on each HTTP parser: both must enforce the same connection limits."""
    if request.param == "httptools" and not httptools_installed():
        pytest.skip("httptools is not installed")
    with running_server(
        tiny_store.root,
        tmp_path,
        max_connections="40",
        header_timeout_s="2",
        http_parser=request.param,
    ) as process:
        yield process


def raw_exchange(port: int, data: bytes, timeout_s: float = 5.0) -> bytes:
    """Send ``data`` (as much as the server takes) and read the answer until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        with contextlib.suppress(OSError):  # closed on us mid-send: its answer is still there
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks)


def probe_latencies(server: ServerProcess, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        status, _ = server.get("/healthz")
        assert status == 200
        out.append(time.perf_counter() - started)
        time.sleep(0.01)


def test_a_huge_request_head_is_refused_at_once_and_stalls_nobody(
    limited_server: ServerProcess,
) -> None:
    server = limited_server
    params = "; a=b" * 50_000  # 250 KB of Content-Type parameters
    head = (
        "POST /restore HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
        f"Content-Type: multipart/form-data; boundary=x{params}\r\n\r\n--x--\r\n"
    ).encode()
    latencies: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe_latencies, args=(server, stop, latencies))
    prober.start()
    try:
        started = time.perf_counter()
        answer = raw_exchange(server.port, head)
        elapsed = time.perf_counter() - started
        huge = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * (8 << 20))
    finally:
        stop.set()
        prober.join()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert huge.startswith(b"HTTP/1.1 400"), huge[:200]
    assert elapsed < 2.0
    assert max(latencies) < 1.0, statistics.quantiles(latencies, n=100)[-1]


def test_idle_connections_past_the_cap_get_503_and_idle_ones_are_closed(
    limited_server: ServerProcess,
) -> None:
    server = limited_server
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        for sock in sockets:
            sock.settimeout(5)
        refused = 0
        for sock in sockets[40:]:
            if sock.recv(4096).startswith(b"HTTP/1.1 503"):
                refused += 1
        assert refused >= 10 - 1  # the prober's own connection may have been closed already
        time.sleep(2.5)  # the request-head deadline closes every idle one
        closed = sum(1 for sock in sockets[:40] if sock.recv(4096) == b"")
        assert closed == 40
    finally:
        for sock in sockets:
            sock.close()
    assert server.get("/healthz")[0] == 200
    assert "Too many open files" not in server.log()


def test_a_head_sent_byte_by_byte_is_cut_off(limited_server: ServerProcess) -> None:
    server = limited_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 100:
                sock.send(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass
        assert time.monotonic() - started < 4.0  # closed at the 2 s deadline, not after 24 s


def post_json(server: ServerProcess, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_is_422_from_the_real_server(server: ServerProcess, number: str) -> None:
    status, body = post_json(server, "/generate", f'{{"digit": {number}}}'.encode())
    assert status == 422, body
    assert json.loads(body)["detail"][0]["loc"] == ["body", "digit"]


def slow_restore_body() -> bytes:
    buffer = io.BytesIO()
    digit = Image.new("L", (28, 28), 0)
    digit.paste(255, (12, 4, 16, 24))  # a stroke: black pixels are the damage to fill
    digit.save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    return json.dumps({"image": image, "mask_rule": "black", "steps": 400, "restarts": 16}).encode()


def test_a_client_that_leaves_is_a_499_without_a_traceback(server: ServerProcess) -> None:
    body = slow_restore_body()
    head = (
        "POST /restore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body)
        time.sleep(0.3)
    deadline = time.monotonic() + 30
    metrics = ""
    while time.monotonic() < deadline and 'status="499"' not in metrics:
        metrics = server.get("/metrics")[1].decode()
        time.sleep(0.2)
    assert 'route="/restore",status="499"' in metrics
    assert 'route="/restore",status="500"' not in metrics
    assert "Traceback" not in server.log() and "CancelledError" not in server.log()


def test_sigterm_drains_then_answers_in_flight_work_and_exits(server: ServerProcess) -> None:
    result: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: result.update(status=post_json(server, "/restore", slow_restore_body())[0])
    )
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    status, body = server.get("/readyz")
    assert status == 503 and json.loads(body)["status"] == "draining"
    worker.join(30)
    assert result["status"] == 200
    returncode = server.process.wait(30)
    assert time.monotonic() - started < 1.5 + 15
    assert returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled


def test_a_missing_admin_token_file_is_one_line_and_exit_2(
    tiny_store: ModelStore, tmp_path: Path
) -> None:
    env = server_env(tiny_store.root, tmp_path, 1, admin_token_file=str(tmp_path / "missing-token"))
    done = subprocess.run(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "GAN_ADMIN_TOKEN_FILE" in lines[0], lines
