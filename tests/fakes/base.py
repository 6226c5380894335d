"""The fake upstream server base: a real HTTP/1.1 server on 127.0.0.1 with scripted behaviour.

Each fake runs the stdlib `ThreadingHTTPServer` (one thread per connection, keep-alive)
on an ephemeral loopback port, so the gateway under test talks to it over real sockets.
Tests script it per test (failures, hangs, paused or broken streams) and read back what
it received. Nothing here sleeps to synchronise: waiting is done on conditions and
events that tests can await with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import select
import socket
import socketserver
import string
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_TEXT = "Hello from the fake model."
DEFAULT_PROMPT_TOKENS = 10
ARGUMENT_FRAGMENTS = 3  # a tool call's JSON arguments stream in this many pieces
WAIT_TIMEOUT = 5.0
_POLL = 0.02  # how often a held request looks at release()/stop() while watching its socket
_ALNUM = string.ascii_letters + string.digits

# Frame kinds in a stream. A checkpoint (pause, break, error) can fire only before a
# CONTENT or TAIL frame; HEAD frames (preamble, block openers) never trigger one.
HEAD, CONTENT, TAIL = "head", "content", "tail"

_UNSET: Any = object()


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def dumps(obj: Any) -> bytes:
    """Compact JSON, as the real APIs put on the wire."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else dumps(data).decode()
    newline = "\r\n" if crlf else "\n"
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes; `arguments` is the JSON text of the arguments."""

    name: str
    arguments: str = "{}"
    id: str | None = None

    @classmethod
    def coerce(cls, value: ToolCall | dict[str, Any]) -> ToolCall:
        if isinstance(value, ToolCall):
            return value
        args = value.get("arguments", value.get("args", {}))
        text = args if isinstance(args, str) else json.dumps(args)
        return cls(name=value["name"], arguments=text, id=value.get("id"))

    @property
    def args(self) -> dict[str, Any]:
        return json.loads(self.arguments)

    def fragments(self) -> list[str]:
        return split_evenly(self.arguments, ARGUMENT_FRAGMENTS)


def split_evenly(text: str, parts: int) -> list[str]:
    """`text` cut into at most `parts` contiguous, non-empty pieces of near-equal length."""
    parts = max(1, min(parts, len(text)))
    if not text:
        return []
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


@dataclass
class Reply:
    """What the fake model answers. Token counts are reported by every dialect.

    - `prompt_tokens`: all prompt tokens, cached ones included (OpenAI's meaning;
      Anthropic's `input_tokens` is reported as prompt - cached - cache_write).
    - `completion_tokens`: all output tokens, reasoning included. Default: one per
      streamed content piece (`text_chunks()` plus every tool call's fragments).
    - `finish_reason`: OpenAI vocabulary (stop, length, tool_calls, content_filter),
      mapped to each dialect; default `tool_calls` when there are tool calls, else `stop`.
    - `stream_chunks`: how many pieces the text streams in; default one per word.
    - `thinking`: reasoning streamed before the answer (Anthropic's thinking block).
    """

    text: str | None = None
    tool_calls: list[ToolCall] | None = None
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS
    completion_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    stream_chunks: int | None = None
    thinking: str | None = None

    def __post_init__(self) -> None:
        self.tool_calls = [ToolCall.coerce(tc) for tc in self.tool_calls or []]
        if self.text is None:
            self.text = "" if self.tool_calls else DEFAULT_TEXT

    def text_chunks(self) -> list[str]:
        assert self.text is not None
        if self.stream_chunks is None:
            return re.findall(r"\s*\S+\s*", self.text) or ([self.text] if self.text else [])
        return split_evenly(self.text, self.stream_chunks)

    @property
    def calls(self) -> list[ToolCall]:
        return list(self.tool_calls or [])

    @property
    def output_tokens(self) -> int:
        if self.completion_tokens is not None:
            return self.completion_tokens
        return len(self.text_chunks()) + sum(len(tc.fragments()) for tc in self.calls)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def stop(self) -> str:
        return self.finish_reason or ("tool_calls" if self.calls else "stop")


@dataclass
class RecordedRequest:
    """One request the fake received, and what became of it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)  # urlencoded or multipart text fields
    files: dict[str, tuple[str, str, bytes]] = field(
        default_factory=dict
    )  # name: (filename, type, data)
    status: int | None = None  # the status the fake answered with
    streamed: bool = False
    content_chunks_sent: int = 0
    paused: bool = False
    hung: bool = False
    dropped: bool = False  # fail_mid_stream_after cut the connection
    stream_aborted: bool = False  # the client went away in the middle of a stream
    client_disconnected: bool = False  # the client went away before the answer was complete

    @property
    def raw_path(self) -> str:
        if not self.query:
            return self.path
        return self.path + "?" + urllib.parse.urlencode(self.query)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=dumps(obj), headers=dict(headers or {}))


@dataclass
class Frame:
    data: bytes
    kind: str = CONTENT


@dataclass
class Stream:
    """A streamed answer: frames written one by one with chunked transfer encoding."""

    frames: Iterable[Frame]
    content_type: str = "text/event-stream; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    error_frame: Callable[[], bytes] | None = None  # what error_mid_stream_after sends


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[RecordedRequest, re.Match[str]], Response | Stream]
    auth: bool = True


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str]
    path: str | None
    key: str | None
    model: str | None = None
    content_type: str = "application/json"


class _ClientGone(Exception):
    pass


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """multipart/form-data into (text fields, files); exact on binary parts."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("multipart body without a boundary")
    delimiter = b"\r\n--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        params = dict(re.findall(r'(\w+)="([^"]*)"', headers.get("content-disposition", "")))
        name = params.get("name", "")
        if "filename" in params:
            ctype = headers.get("content-type", "application/octet-stream")
            files[name] = (params["filename"], ctype, content)
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer
    headers_sent = False

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    def handle_one_request(self) -> None:
        self.headers_sent = False
        super().handle_one_request()

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the gateway opens dozens of connections at once

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), a reverse DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients vanishing between requests is normal; handler errors are kept in fake.errors


class FakeServer:
    """Base of every fake upstream. Subclasses provide `routes()` and the provider's shapes.

    Use as a context manager or call `start()`/`stop()`. Everything scripted persists until
    `reset()` or until consumed (`fail_next`, `hang_next`, `queue_reply` are one-shot).
    """

    name = "fake"
    default_key: str | None = None

    def __init__(self, *, expected_key: str | Iterable[str] | None = _UNSET) -> None:
        keys = self.default_key if expected_key is _UNSET else expected_key
        if keys is None:
            self.valid_keys: set[str] | None = None
        else:
            self.valid_keys = {keys} if isinstance(keys, str) else set(keys)
        self.expected_key: str | None = (
            keys if isinstance(keys, str) or keys is None else next(iter(keys))
        )
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self.routes()
        self._release_generation = 0
        self.client_disconnected = threading.Event()
        self.paused = threading.Event()
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon shutdown() is noticed
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; held (hanging or paused) requests are let go and their sockets shut."""
        if self._httpd is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join(timeout=WAIT_TIMEOUT)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the fake first"
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        return self.base_url + path

    # ---- scripting -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests and every scripted behaviour; let held requests go."""
        with self._cond:
            self._release_generation += 1
            self._cond.notify_all()
            self.requests: list[RecordedRequest] = []
            self.errors: list[str] = []  # tracebacks of bugs in the fake itself
            self.reply = Reply()
            self._reply_queue: list[Reply] = []
            self._failures: list[_Failure] = []
            self._hangs: list[tuple[str | None, str | None, str | None]] = []
            # The message of the error event error_mid_stream_after sends (None: the
            # provider's usual one), e.g. one quoting the upstream key.
            self.stream_error_message: str | None = None
            self.include_usage = True
            # The model repeats the last user message word for word (a model told to
            # repeat what it is given), instead of `reply`'s text.
            self.echo_prompt = False
            # A stream written in one piece, end included, as an upstream with its
            # whole answer ready does (no scripted interruptions then).
            self.whole_streams = False
            self._pause_after: int | None = None
            self.fail_mid_stream_after: int | None = None
            self.error_mid_stream_after: int | None = None
            self._counts = {"paused": 0, "hanging": 0, "disconnected": 0, "completed": 0}
            self.client_disconnected.clear()
            self.paused.clear()

    def set_reply(self, **fields: Any) -> Reply:
        """Replace the default reply (see `Reply` for fields and defaults)."""
        with self._lock:
            self.reply = Reply(**fields)
            return self.reply

    def queue_reply(self, **fields: Any) -> Reply:
        """A one-shot reply used by the next request before falling back to `reply`."""
        reply = Reply(**fields)
        with self._lock:
            self._reply_queue.append(reply)
        return reply

    def next_reply(self) -> Reply:
        with self._lock:
            return self._reply_queue.pop(0) if self._reply_queue else self.reply

    def fail_next(
        self,
        status: int,
        body: Any = None,
        times: int = 1,
        *,
        headers: dict[str, str] | None = None,
        path: str | None = None,
        key: str | None = None,
        model: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        """The next `times` requests (whose path contains `path`, that use credential
        `key` and ask for `model`, when given) get `status` with `body` (a dict is sent as
        JSON, str/bytes as is, None = the provider's real error shape for that status).
        A 200 with a body and `content_type` is how a garbage answer is scripted."""
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    _Failure(status, body, dict(headers or {}), path, key, model, content_type)
                )

    def hang_next(
        self,
        times: int = 1,
        *,
        path: str | None = None,
        key: str | None = None,
        model: str | None = None,
    ) -> None:
        """The next `times` requests are read and then never answered, until the client goes
        away, `release()` is called (then they are answered normally) or the fake stops."""
        with self._lock:
            self._hangs.extend([(path, key, model)] * times)

    @property
    def pause_after_chunks(self) -> int | None:
        return self._pause_after

    @pause_after_chunks.setter
    def pause_after_chunks(self, value: int | None) -> None:
        """Every stream stops after `value` content chunks until `release()` or disconnect."""
        with self._lock:
            self._pause_after = value
            self.paused.clear()

    def release(self) -> None:
        """Let every currently held request (paused stream or hang) continue."""
        with self._cond:
            self._release_generation += 1
            self._cond.notify_all()

    # ---- waiting ---------------------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"{self.name}: timed out after {timeout}s waiting for {what}")

    def wait_for_requests(self, n: int = 1, timeout: float = WAIT_TIMEOUT) -> list[RecordedRequest]:
        """Block until at least `n` requests arrived (recorded as soon as their body is read)."""
        self._wait(lambda: len(self.requests) >= n, timeout, f"{n} request(s)")
        return list(self.requests)

    def wait_paused(self, n: int = 1, timeout: float = WAIT_TIMEOUT) -> None:
        """Block until `n` streams in total have reached the pause point."""
        self._wait(lambda: self._counts["paused"] >= n, timeout, f"{n} paused stream(s)")

    def wait_hanging(self, n: int = 1, timeout: float = WAIT_TIMEOUT) -> None:
        self._wait(lambda: self._counts["hanging"] >= n, timeout, f"{n} hanging request(s)")

    def wait_disconnects(self, n: int = 1, timeout: float = WAIT_TIMEOUT) -> None:
        """Block until clients went away in the middle of `n` answers in total."""
        self._wait(lambda: self._counts["disconnected"] >= n, timeout, f"{n} disconnect(s)")

    def wait_completed(self, n: int = 1, timeout: float = WAIT_TIMEOUT) -> None:
        """Block until the fake finished handling `n` requests in total (however they ended)."""
        self._wait(lambda: self._counts["completed"] >= n, timeout, f"{n} completed request(s)")

    # ---- reading back ----------------------------------------------------------------

    @property
    def last_request(self) -> RecordedRequest:
        assert self.requests, f"{self.name} received no request"
        return self.requests[-1]

    def requests_to(self, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_part in r.path]

    @property
    def aborted_streams(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.stream_aborted]

    # ---- provider hooks (override) ---------------------------------------------------

    def routes(self) -> list[Route]:
        return []

    def credential(self, req: RecordedRequest) -> str | None:
        """The API key a request carries, in this provider's header."""
        auth = req.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def check_auth(self, req: RecordedRequest) -> Response | None:
        """None when allowed, else the provider's 401 answer."""
        if self.valid_keys is None or self.credential(req) in self.valid_keys:
            return None
        return self.error_response(401, "invalid api key")

    def error_response(self, status: int, message: str | None = None) -> Response:
        """The provider's real error answer for `status`."""
        return json_response({"error": {"message": message or f"error {status}"}}, status)

    def not_found(self, req: RecordedRequest) -> Response:
        return self.error_response(404, f"no route for {req.method} {req.path}")

    def response_headers(self) -> dict[str, str]:
        """Headers the provider puts on every answer (request ids...)."""
        return {}

    # ---- plumbing --------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _read_request(self, h: _Handler) -> RecordedRequest:
        split = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in h.headers.items()}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(h)
        else:
            body = h.rfile.read(int(headers.get("content-length") or 0))
        req = RecordedRequest(h.command, split.path, query, headers, body)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            req.form, req.files = parse_multipart(body, ctype)
        elif ctype.startswith("application/x-www-form-urlencoded"):
            req.form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        elif body:
            try:
                req.json = json.loads(body)
            except ValueError:
                req.json = None
        return req

    @staticmethod
    def _read_chunked(h: _Handler) -> bytes:
        parts = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()

    def _handle(self, h: _Handler) -> None:
        try:
            req = self._read_request(h)
        except Exception:
            with self._lock:
                self.errors.append(traceback.format_exc())
            h.send_error(400, "fake could not read the request")
            return
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
        try:
            self._serve(h, req)
        except _ClientGone:
            h.close_connection = True
        except Exception:
            h.close_connection = True
            with self._lock:
                self.errors.append(traceback.format_exc())
            if not h.headers_sent:
                with contextlib.suppress(_ClientGone):
                    self._send(h, req, self.error_response(500, "fake server bug, see fake.errors"))
        finally:
            with self._cond:
                self._counts["completed"] += 1
                self._cond.notify_all()

    def _serve(self, h: _Handler, req: RecordedRequest) -> None:
        route, match = self._route(req)
        if route is None or match is None:
            self._send(h, req, self.not_found(req))
            return
        if route.auth:
            denied = self.check_auth(req)
            if denied is not None:
                self._send(h, req, denied)
                return
        if route.auth and self._take(self._hangs, req, lambda item: item):
            req.hung = True
            if not self._hold(h, req, "hanging"):
                return
        failure = (
            self._take(self._failures, req, lambda f: (f.path, f.key, f.model))
            if route.auth
            else None
        )
        if failure is not None:
            self._send(h, req, self._failure_response(failure))
            return
        result = route.handler(req, match)
        if isinstance(result, Stream):
            self._send_stream(h, req, result)
        else:
            self._send(h, req, result)

    def _route(self, req: RecordedRequest) -> tuple[Route | None, re.Match[str] | None]:
        for route in self._routes:
            if route.method == req.method:
                match = route.pattern.fullmatch(req.path)
                if match:
                    return route, match
        return None, None

    def model_of(self, req: RecordedRequest) -> str | None:
        """The model a request asks for: its JSON or form `model` field, else the path
        (Gemini and Azure name it there)."""
        source = req.json if isinstance(req.json, dict) else req.form
        value = source.get("model") if isinstance(source, dict) else None
        return value if isinstance(value, str) else None

    def _take(
        self,
        queue: list[Any],
        req: RecordedRequest,
        filters: Callable[[Any], tuple[Any, Any, Any]],
    ) -> Any:
        with self._lock:
            for i, item in enumerate(queue):
                path, key, model = filters(item)
                if (
                    (path is None or path in req.path)
                    and (key is None or key == self.credential(req))
                    and (
                        model is None or model in (self.model_of(req), *re.split("[/:]", req.path))
                    )
                ):
                    return queue.pop(i)
        return None

    def _failure_response(self, failure: _Failure) -> Response:
        if failure.body is None:
            response = self.error_response(failure.status)
        elif isinstance(failure.body, (bytes, str)):
            body = failure.body.encode() if isinstance(failure.body, str) else failure.body
            response = Response(failure.status, body, failure.content_type)
        else:
            response = json_response(failure.body, failure.status)
        response.headers.update(failure.headers)
        return response

    def _hold(self, h: _Handler, req: RecordedRequest, kind: str) -> bool:
        """Keep the request waiting. True when released, False when the client left or the
        fake is stopping (the caller then gives up on the request)."""
        with self._cond:
            generation = self._release_generation
            self._counts[kind] += 1
            if kind == "paused":
                self.paused.set()
            self._cond.notify_all()
        while True:
            with self._cond:
                if self._release_generation != generation:
                    return True
            if self._stopping.is_set():
                h.close_connection = True
                return False
            if self._client_left(h.connection):
                if not self._stopping.is_set():  # stop() shuts sockets: not the client's doing
                    self._mark_disconnected(h, req)
                h.close_connection = True
                return False

    def _client_left(self, conn: socket.socket) -> bool:
        try:
            readable, _, _ = select.select([conn], [], [], _POLL)
            if not readable:
                return False
            if conn.recv(1, socket.MSG_PEEK) == b"":
                return True
        except (OSError, ValueError):
            return True
        # The client sent more bytes (pipelining): not a disconnect; don't spin on it.
        self._stopping.wait(_POLL)
        return False

    def _mark_disconnected(self, h: _Handler, req: RecordedRequest) -> None:
        h.close_connection = True
        with self._cond:
            req.client_disconnected = True
            req.stream_aborted = req.streamed
            self._counts["disconnected"] += 1
            self.client_disconnected.set()
            self._cond.notify_all()

    def _write(self, h: _Handler, req: RecordedRequest, data: bytes) -> None:
        try:
            h.wfile.write(data)
        except OSError as exc:  # BrokenPipe, ConnectionReset...
            if not self._stopping.is_set():
                self._mark_disconnected(h, req)
            raise _ClientGone from exc

    def _start_response(self, h: _Handler, status: int, headers: dict[str, str]) -> None:
        h.headers_sent = True
        h.send_response(status)
        for name, value in {**self.response_headers(), **headers}.items():
            h.send_header(name, value)

    def _send(self, h: _Handler, req: RecordedRequest, resp: Response) -> None:
        req.status = resp.status
        self._start_response(h, resp.status, {"Content-Type": resp.content_type, **resp.headers})
        h.send_header("Content-Length", str(len(resp.body)))
        try:
            h.end_headers()
        except OSError as exc:
            self._mark_disconnected(h, req)
            raise _ClientGone from exc
        self._write(h, req, resp.body)

    def _send_stream(self, h: _Handler, req: RecordedRequest, stream: Stream) -> None:
        req.status = 200
        req.streamed = True
        headers = {
            "Content-Type": stream.content_type,
            "Cache-Control": "no-cache",
            **stream.headers,
        }
        self._start_response(h, 200, headers)
        h.send_header("Transfer-Encoding", "chunked")
        try:
            h.end_headers()
        except OSError as exc:
            self._mark_disconnected(h, req)
            raise _ClientGone from exc
        with self._lock:
            checkpoints = {
                "pause": self._pause_after,
                "error": self.error_mid_stream_after,
                "drop": self.fail_mid_stream_after,
            }
        whole = bytearray() if self.whole_streams else None
        for frame in self._frames_with_end(stream.frames):
            if frame.kind != HEAD and not self._checkpoint(h, req, stream, checkpoints):
                return
            if frame.data:
                chunk = b"%X\r\n%s\r\n" % (len(frame.data), frame.data)
                if whole is None:
                    self._write(h, req, chunk)
                else:
                    whole += chunk
            if frame.kind == CONTENT:
                req.content_chunks_sent += 1
        self._write(h, req, (whole or b"") + b"0\r\n\r\n")

    @staticmethod
    def _frames_with_end(frames: Iterable[Frame]) -> Iterator[Frame]:
        yield from frames
        yield Frame(b"", TAIL)  # a last checkpoint, for K == every content chunk

    def _checkpoint(
        self, h: _Handler, req: RecordedRequest, stream: Stream, points: dict[str, int | None]
    ) -> bool:
        """Fire the scripted interruptions due after `req.content_chunks_sent` chunks.
        False when the stream must end here."""
        sent = req.content_chunks_sent
        if points["pause"] is not None and sent >= points["pause"]:
            points["pause"] = None
            req.paused = True
            if not self._hold(h, req, "paused"):
                return False
        if points["error"] is not None and sent >= points["error"]:
            points["error"] = None
            if stream.error_frame is not None:
                data = stream.error_frame()
                self._write(h, req, b"%X\r\n%s\r\n" % (len(data), data))
            self._write(h, req, b"0\r\n\r\n")
            return False
        if points["drop"] is not None and sent >= points["drop"]:
            points["drop"] = None
            req.dropped = True
            h.close_connection = True
            # FIN, not RST: an RST could make the client discard chunks already sent.
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return False
        return True
