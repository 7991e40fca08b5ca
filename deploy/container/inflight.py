"""SIGTERM with requests in flight, seen from outside the container (standard library only).

Sends ``--requests`` slow requests (big PNG grids) at once, each on its own connection; once every
request has been written it runs ``--signal-command`` (e.g. ``podman kill --signal TERM NAME``),
then checks the drain (``/readyz`` turns 503 while a fresh request is still answered) and waits
for every in-flight response. Prints one JSON object; exits 1 when a request failed.

    python3 deploy/container/inflight.py --port 18000 --signal-command "podman kill -s TERM api"
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import subprocess
import sys
import threading
import time
from typing import TypedDict

PNG = b"\x89PNG\r\n\x1a\n"


class Answer(TypedDict, total=False):
    """One in-flight request's outcome: the response, or the error that ended it."""

    status: int
    png: bool
    bytes: int
    done: float
    error: str


def post(port: int, body: dict[str, object], timeout: float) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = json.dumps(body).encode()
    connection.request(
        "POST", "/generate", body=payload, headers={"Content-Type": "application/json"}
    )
    return connection


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--scale", type=int, default=16)
    # 64 images a request: slow to encode at scale 16 (an 8x8 grid of 448 px digits), yet few
    # enough for admission control (GAN_MAX_QUEUE_WAIT_S) to take all of them at once.
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--signal-command", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser.parse_args()


def in_flight(
    args: argparse.Namespace, index: int, results: list[Answer], sent: threading.Barrier
) -> None:
    """One slow request, sent before the signal (``sent``), its answer read after it."""
    body = {"n": args.n, "seed": index, "format": "png", "grid": True, "scale": args.scale}
    try:
        connection = post(args.port, body, args.timeout)
    except OSError as error:
        results[index] = {"error": f"send: {error!r}"}
        sent.wait()
        return
    sent.wait()
    try:
        response = connection.getresponse()
        data = response.read()
        results[index] = {
            "status": response.status,
            "png": data.startswith(PNG),
            "bytes": len(data),
            "done": time.time(),
        }
    except OSError as error:
        results[index] = {"error": f"receive: {error!r}"}
    finally:
        connection.close()


def readyz_after(port: int, signalled: float) -> tuple[int | None, float | None]:
    """The drain: /readyz goes 503 at once. (its last status, seconds after the signal)"""
    readyz = None
    while time.time() - signalled < 5:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            readyz = connection.getresponse().status
            connection.close()
        except OSError:
            return None, None
        if readyz == 503:
            return readyz, round(time.time() - signalled, 3)
        time.sleep(0.05)
    return readyz, None


def new_request(port: int) -> object:
    """During the drain the server still answers a new request."""
    try:
        connection = post(port, {"digit": 7, "seed": 1, "format": "png"}, 10)
        response = connection.getresponse()
        answer: object = response.status if response.read().startswith(PNG) else "not png"
        connection.close()
    except OSError as error:
        answer = repr(error)
    return answer


def report(
    args: argparse.Namespace,
    results: list[Answer],
    signalled: float,
    readyz: tuple[int | None, float | None],
    during_drain: object,
) -> dict[str, object]:
    ok = [r for r in results if r.get("status") == 200 and r.get("png")]
    after = [r for r in ok if r["done"] > signalled]
    last = round(max(r["done"] for r in ok) - signalled, 3) if ok else None
    summary = (
        f"{len(ok)}/{args.requests} in-flight requests answered 200 ({len(after)} after the "
        f"signal, the last at +{last} s), /readyz 503 at +{readyz[1]} s, a new request during "
        f"the drain: {during_drain}"
    )
    return {
        "in_flight_requests": args.requests,
        "answered_200_png": len(ok),
        "answered_after_signal": len(after),
        "last_answer_after_signal_s": last,
        "readyz_after_signal": readyz[0],
        "readyz_503_after_s": readyz[1],
        "new_request_during_drain": during_drain,
        "failures": [r for r in results if r not in ok],
        "signalled_at": signalled,
        "summary": summary,
    }


def main() -> int:
    args = parse_args()
    results: list[Answer] = [{} for _ in range(args.requests)]
    sent = threading.Barrier(args.requests + 1)
    threads = [
        threading.Thread(target=in_flight, args=(args, i, results, sent))
        for i in range(args.requests)
    ]
    for thread in threads:
        thread.start()
    sent.wait()
    time.sleep(0.2)  # let the server read every request before the signal
    signalled = time.time()
    subprocess.run(shlex.split(args.signal_command), check=True, capture_output=True)
    readyz = readyz_after(args.port, signalled)
    during_drain = new_request(args.port)
    for thread in threads:
        thread.join()
    result = report(args, results, signalled, readyz, during_drain)
    print(json.dumps(result))
    return 0 if result["answered_200_png"] == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
