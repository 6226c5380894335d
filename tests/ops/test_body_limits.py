"""Request bodies are bounded on every path, under every server the project runs
(uvicorn in production, daphne for `make run`, granian): a declared 2 GiB body is
refused before any of it is read, a chunked upload is cut off at its path's limit, and
compression bombs sent by a key with no credits leave the server's memory where it was
and its /healthz answering."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
import zstandard

from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.servers import AsgiServer, ServerProcess

GIB, MIB = 2**30, 2**20
SERVERS = ["uvicorn", "daphne", "granian"]


def _exchange(port: int, head: str, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request head, then body chunks for as long as the server has not
    answered (as curl does); returns the answer's first bytes and how much of the body
    was sent. Never waits for more than a few seconds on a silent server."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(head.encode())
        for chunk in chunks:
            if select.select([conn], [], [], 0)[0]:
                break  # the server answered early: stop sending
            try:
                conn.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        deadline = time.monotonic() + 15
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 20:
            assert time.monotonic() < deadline, f"no answer, after {answer!r}"
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer, sent


def _declared(port: int, path: str, length: int, *, first: int = 64 * 1024) -> bytes:
    """A POST that declares `length` bytes and sends only `first` of them."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-nx-{'x' * 43}\r\nContent-Length: {length}\r\n\r\n"
    )
    answer, _ = _exchange(port, head, iter([b" " * first]))
    return answer


def _chunked(port: int, path: str, total: int) -> tuple[bytes, int]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    block = 64 * 1024
    chunks = (f"{block:x}\r\n".encode() + b" " * block + b"\r\n" for _ in range(total // block))
    return _exchange(port, head, chunks)


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


# -- in this process, on the embedded default and PostgreSQL alike --------------------


def test_a_2_gib_post_to_the_stripe_webhook_is_refused_before_it_is_read(
    live_app: AsgiServer,
) -> None:
    answer = _declared(live_app.port, "/stripe/webhook/", 2 * GIB)
    assert _status(answer) == 413
    assert b"larger than 1024 KiB" in answer


@pytest.mark.parametrize(("path", "limit"), [("/login/", 256), ("/api/keys/", 256)])
def test_a_large_chunked_post_is_cut_off_at_its_pages_limit(
    live_app: AsgiServer, path: str, limit: int
) -> None:
    answer, sent = _chunked(live_app.port, path, 8 * MIB)
    assert _status(answer) == 413
    assert f"larger than {limit} KiB".encode() in answer
    assert sent < 8 * MIB  # answered while the client was still sending
    if path.startswith("/api/"):
        body = answer.split(b"\r\n\r\n", 1)[1]
        assert orjson.loads(body[: body.rindex(b"}") + 1])["detail"].startswith("The request")


# -- real server processes, as deployed ----------------------------------------------


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (granian serves from a worker process)."""
    pids, index = [pid], 0
    while index < len(pids):
        current = pids[index]
        index += 1
        for task in os.listdir(f"/proc/{current}/task"):
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pids += [int(child) for child in children.read().split()]
            except OSError:
                continue
    return pids


def _rss_mib(pid: int) -> float:
    total = 0
    for each in _tree(pid):
        try:
            with open(f"/proc/{each}/status") as status:
                line = next(x for x in status if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        total += int(line.split()[1])  # kB
    return total / 1024


@pytest.fixture(params=SERVERS)
def server(
    request: pytest.FixtureRequest, transactional_db: None, openai_catalogue: AiModel
) -> Iterator[ServerProcess]:
    process = ServerProcess(server=request.param)
    yield process
    process.stop()


@pytest.mark.postgres
def test_declared_2_gib_bodies_are_refused_before_they_are_read(server: ServerProcess) -> None:
    port = server.port
    v1 = _declared(port, "/v1/chat/completions", 2 * GIB)
    assert _status(v1) == 413
    assert b'"code":"request_too_large"' in v1
    messages = _declared(port, "/v1/messages", 2 * GIB)
    assert _status(messages) == 413 and b'"type":"request_too_large"' in messages
    for path in ("/stripe/webhook/", "/payos/webhook/", "/sepay/webhook/", "/login/", "/api/keys/"):
        assert _status(_declared(port, path, 2 * GIB)) == 413, path


@pytest.mark.postgres
def test_a_chunked_upload_is_cut_off_at_the_limit(server: ServerProcess) -> None:
    answer, sent = _chunked(server.port, "/stripe/webhook/", 16 * MIB)
    assert _status(answer) == 413
    assert sent < 16 * MIB
    answer, sent = _chunked(server.port, "/v1/images/generations", 16 * MIB)
    assert _status(answer) == 413 and b"request_too_large" in answer


def _bomb() -> bytes:
    """31 MiB of JSON (`{"pad": [{}, {}, ...]}`: within the 32 MiB a body may be) in
    about 3 KB of zstd."""
    pad = b"{}," * (31 * MIB // 3)
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"pad":[' + pad + b"{}]}"
    return zstandard.ZstdCompressor().compress(body)


@pytest.mark.postgres
def test_compression_bombs_leave_memory_and_healthz_as_they_were(server: ServerProcess) -> None:
    broke = make_key(make_user())  # a key with 0 credits
    headers = {
        "authorization": f"Bearer {broke.secret}",
        "content-type": "application/json",
        "content-encoding": "zstd",
    }
    bomb = _bomb()
    assert len(bomb) < 4096
    url = server.url + "/v1/chat/completions"
    with httpx.Client(timeout=30) as client:
        # Warm: the code paths a bomb takes are loaded before the baseline is read.
        assert client.get(server.url + "/healthz").status_code == 200
        assert client.post(url, content=bomb, headers=headers).status_code == 413
    before = _rss_mib(server.process.pid)
    done = threading.Event()
    peak = [before]
    slowest = [0.0]

    def sample_rss() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss_mib(server.process.pid))

    def probe_healthz() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get(server.url + "/healthz").status_code == 200
                slowest[0] = max(slowest[0], time.monotonic() - started)

    def send_bombs() -> list[int]:
        with httpx.Client(timeout=60) as client:
            return [client.post(url, content=bomb, headers=headers).status_code for _ in range(5)]

    with ThreadPoolExecutor(max_workers=5) as pool:
        watchers = [pool.submit(sample_rss), pool.submit(probe_healthz)]
        attackers = [pool.submit(send_bombs) for _ in range(3)]  # three in parallel
        answers = [status for attacker in attackers for status in attacker.result()]
        done.set()
        for watcher in watchers:
            watcher.result()
    after = _rss_mib(server.process.pid)
    assert answers == [413] * 15
    assert peak[0] - before < 100, f"RSS {before:.0f} MiB -> peak {peak[0]:.0f} MiB"
    assert after - before < 100, f"RSS {before:.0f} MiB -> {after:.0f} MiB"
    assert slowest[0] < 1.0, f"/healthz took {slowest[0]:.2f}s while bombs were refused"
