"""The HTTP front of the local exchange: Alpaca's trading and market-data paths on one port.

Bound to 127.0.0.1 only: the exchange has default credentials and save/load endpoints that
write files, so it must never listen on a network interface. One lock serialises every call
into the exchange; the server thread pool only overlaps network I/O (and injected delays).

Hostile input costs little: the keys are checked before a body is read, and a request without
them is answered 401 and neither logged nor saved; a body is read only up to
`MAX_BODY_BYTES` and within `BODY_SECONDS`; at most `MAX_THREADS` connections are served at
once (the next one is answered 503); every answer, a malformed request's or an unknown
method's included, is JSON in Alpaca's ``{"code", "message"}`` shape.
"""

from __future__ import annotations

import hmac
import json
import logging
import select
import selectors
import socket
import struct
import sys
import threading
import time
import traceback
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simbroker import (
    account_controls,
    activities,
    controls,
    corporate_api,
    data_api,
    errors,
    ratelimit,
    trading_api,
    wire,
)
from simbroker.exchange import Exchange
from simbroker.faults import Fault, Faults
from simbroker.journal import Journal
from simbroker.routing import Request, Response, Route

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_sim/"
ROUTES: list[Route] = [*trading_api.routes.table, *data_api.routes.table, *controls.routes.table,
                       *activities.routes.table, *account_controls.routes.table,
                       *corporate_api.routes.table]
MALFORMED_BODY = b'{"id": "truncated'
MAX_BODY_BYTES = 1 << 20  # an order is a few hundred bytes; a fault body a few kilobytes
BODY_SECONDS = 5.0  # a declared body must arrive within this, or the request is refused
MAX_THREADS = 64  # connections served at once
IDLE_SECONDS = 60  # an idle keep-alive connection frees its thread after this
log = logging.getLogger("simbroker.server")


class SimServer:
    """A running exchange server. Use as a context manager, or call `close()`."""

    def __init__(self, exchange: Exchange, port: int = 0, *,
                 state_path: str | None = None, journal: Journal | None = None) -> None:
        self.exchange = exchange
        self.state_path = state_path
        if journal is None and state_path:
            journal = Journal(state_path).attach(exchange)
        self.journal = journal
        self.lock = threading.RLock()
        self.faults = Faults()
        self.limiter = ratelimit.RateLimiter()
        self.stopping = threading.Event()
        self.unauthorized = 0  # requests answered 401 (not in the request log)
        self._httpd = _HTTPServer((HOST, port), _Handler)
        self._httpd.sim = self
        self.host, self.port = self._httpd.server_address[:2]
        self.trading_url = f"http://{HOST}:{self.port}"
        self.data_url = self.trading_url
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="simbroker",
                                        daemon=True)

    def start(self) -> SimServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        # Idle keep-alive connections would otherwise go on answering a client's session.
        for connection in self._httpd.open_connections():
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self.commit()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Python side of the controls (see controls.py) -----------------------------------

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.exchange.requests.entries)

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.exchange.requests.counts)

    def clear_requests(self) -> None:
        with self.lock:
            self.exchange.requests.clear()

    def advance_to(self, when: datetime) -> None:
        with self.lock:
            self.exchange.advance_to(when)

    def save(self, path: str | None = None) -> None:
        """A whole snapshot at `path`; at the --state file, a compaction of its journal."""
        with self.lock:
            if self.journal is not None and (path is None or path == self.state_path):
                self.journal.compact(self.exchange)
            else:
                self.exchange.save(path or self.state_path)

    def commit(self, *, with_log: bool = True) -> None:
        """Make the exchange's changes durable in the --state file's journal (if any)."""
        with self.lock:
            if self.journal is not None:
                self.journal.commit(self.exchange, with_log=with_log)


def serve(exchange: Exchange, port: int = 0, *, state_path: str | None = None,
          journal: Journal | None = None) -> SimServer:
    """Serve `exchange` on 127.0.0.1:`port` (0: a free port) in a background thread.

    `with serve(ex) as server:` gives `server.trading_url`, `server.data_url` and
    `server.port`; leaving the block stops the server. With `state_path`, every change is
    made durable there (a snapshot and its journal, see journal.py) before the request that
    made it is answered; `journal` is that file's journal when the caller already keeps one.
    """
    return SimServer(exchange, port, state_path=state_path, journal=journal).start()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: SimServer

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_THREADS)
        # shutdown() wakes the serving loop through this pair at once, where socketserver's
        # loop would notice only at its next poll (up to half a second, by default): stopping
        # the exchange at the end of each simulated day costs no waiting.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stop_asked = threading.Event()
        self._stopped = threading.Event()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """socketserver's loop (one connection accepted at a time, each served by its own
        thread), which `shutdown()` ends at once."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stop_asked.is_set():
                    ready = selector.select(poll_interval)
                    if self._stop_asked.is_set():
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()
                    self.service_actions()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the serve_forever loop and wait until it has (called from another thread)."""
        self._stop_asked.set()
        try:
            self._wake_writer.send(b"\0")
        except OSError:  # closed by server_close: the loop ends at its next poll if not yet
            pass
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        # ThreadingHTTPServer starts a thread per connection, without limit; past
        # MAX_THREADS the connection is answered 503 at once and closed.
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its connection is routine (a timeout, a stopped process): no
        # traceback on stderr for that; anything else is a bug, shown.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("connection from %s dropped", client_address)
            return
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def open_connections(self) -> list[socket.socket]:
        with self._connections_lock:
            return list(self._connections)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's session reuses connections
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits
    # for the client's delayed ACK (~40 ms per request on Linux). TCP_NODELAY sends at once.
    disable_nagle_algorithm = True
    server: _HTTPServer
    timeout = IDLE_SECONDS
    rate_headers: dict[str, str]  # the key's budget, sent with this request's answer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    # Methods no route has get 405 (or 404) from the route table, in Alpaca's error shape.
    do_POST = do_DELETE = do_PATCH = do_PUT = do_HEAD = do_OPTIONS = do_TRACE = do_GET
    do_CONNECT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, an unknown method, headers too
        long) as JSON in Alpaca's shape instead of its HTML page; the connection closes."""
        self.close_connection = True
        self.request_version = self.protocol_version  # headers even for a garbled line
        text = message or self.responses.get(code, ("error",))[0]
        try:
            self._send_raw(code, json.dumps(errors.for_status(code, text).body()).encode(),
                           {"Content-Type": "application/json; charset=UTF-8",
                            "Connection": "close"})
        except OSError:
            pass

    def _handle(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        path, method = url.path, self.command
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        self.rate_headers = {}
        # The keys come first: a request without them is answered at once, its body unread
        # (the connection closes), and it is neither logged nor saved.
        if not self._authorized(sim):
            sim.unauthorized += 1
            self.close_connection = True
            self._send(_unauthorized(path), close=True)
            return
        try:
            raw = self._read_body()
        except errors.ApiError as exc:
            self.close_connection = True
            self._send(_error(exc), close=True)
            return
        # Each request is logged before its response leaves, so a client that has its
        # answer always finds the request in the log.
        if not self._within_budget(sim, method, path):
            return
        fault = None if path.startswith(CONTROL_PREFIX) else sim.faults.take(method, path)
        if fault is None:
            response = _dispatch(sim, method, path, params, raw)
            self._record(sim, method, path, response.status)
            self._send(response)
            return
        self._suffer(sim, fault, method, path, params, raw)

    def _suffer(self, sim: SimServer, fault: Fault, method: str, path: str,
                params: dict[str, str], raw: bytes) -> None:
        if fault.delay_seconds:
            sim.stopping.wait(fault.delay_seconds)
        response = None
        if fault.after_commit or fault.kind == "delay":
            response = _dispatch(sim, method, path, params, raw)
        if fault.kind == "status":
            response = Response(*fault.error_response())
        elif fault.kind == "malformed":
            response = Response(200, MALFORMED_BODY)
        status = 0 if fault.kind in ("hang", "reset") or response is None else response.status
        self._record(sim, method, path, status, fault=fault.kind)
        if fault.kind == "hang":
            self._hang(sim, fault.hang_seconds)
        elif fault.kind == "reset":
            self._reset()
        else:
            assert response is not None
            self._send(response)

    # -- transport ----------------------------------------------------------------------------

    def _within_budget(self, sim: SimServer, method: str, path: str) -> bool:
        """Spend one request of the key's budget (ratelimit.py); answer 429 if none is left.
        The budget's headers go on this request's answer, whatever it is."""
        if path.startswith(CONTROL_PREFIX):
            return True
        config = sim.exchange.config
        verdict = sim.limiter.take(config.key_id, ratelimit.api_of(path), config.rate_limit,
                                   config.rate_window_seconds)
        self.rate_headers = verdict.headers
        if not verdict.allowed:
            self._record(sim, method, path, 429)
            self._send(Response(429, verdict.body()))
        return verdict.allowed

    def _read_body(self) -> bytes:
        """The declared body, at most MAX_BODY_BYTES, which must arrive within BODY_SECONDS."""
        declared = (self.headers.get("Content-Length") or "0").strip()
        if self.headers.get("Transfer-Encoding"):
            raise errors.malformed("Transfer-Encoding is not supported; send Content-Length")
        if not declared.isdigit():
            raise errors.malformed(f"Content-Length {declared[:40]!r} is not a number of bytes")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise errors.ApiError(413, 41300000, f"a body of {length} bytes is more than "
                                  f"this exchange reads ({MAX_BODY_BYTES})")
        deadline = time.monotonic() + BODY_SECONDS
        chunks, got = [], 0
        try:
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except (TimeoutError, OSError):
            pass
        finally:
            self.connection.settimeout(self.timeout)
        if got < length:
            raise errors.malformed(f"the body has {got} of the {length} bytes that "
                                   "Content-Length declares")
        return b"".join(chunks)

    def _authorized(self, sim: SimServer) -> bool:
        config = sim.exchange.config
        key = self.headers.get("APCA-API-KEY-ID") or ""
        secret = self.headers.get("APCA-API-SECRET-KEY") or ""
        return (hmac.compare_digest(key.encode(), config.key_id.encode())
                and hmac.compare_digest(secret.encode(), config.secret_key.encode()))

    def _send(self, response: Response, *, close: bool = False) -> None:
        headers = {"Content-Type": "application/json; charset=UTF-8",
                   **getattr(self, "rate_headers", {}), **response.headers}
        if close:
            headers["Connection"] = "close"
        if isinstance(response.body, bytes):  # already encoded (a malformed-body fault)
            body = response.body
        else:
            body = b"" if response.body is None else json.dumps(response.body).encode()
        self._send_raw(response.status, body, headers)

    def _send_raw(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _hang(self, sim: SimServer, seconds: float) -> None:
        """Hold the connection, unanswered, until the client closes it or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not sim.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                break  # the client gave up
        self.close_connection = True

    def _reset(self) -> None:
        """Close the socket with a TCP reset and no response (SO_LINGER 0)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _record(self, sim: SimServer, method: str, path: str, status: int, **extra: Any) -> None:
        """Log the request and make what it changed durable, before its answer leaves."""
        with sim.lock:
            if not path.startswith(CONTROL_PREFIX):
                exchange = sim.exchange
                exchange.requests.record(method, path, status, wire.timestamp(exchange.now),
                                         **extra)
            # Whatever the request changed is durable before its answer leaves (a refused
            # order still drew an id); the log entry of a request that changed nothing (a
            # read, a refused cancel) waits for the next write, or the server's close.
            sim.commit(with_log=False)


def _dispatch(sim: SimServer, method: str, path: str, params: dict[str, str],
              raw: bytes) -> Response:
    """Route one request to its handler under the exchange lock; errors become responses."""
    route, match, allowed = _route(method, path)
    if route is None:
        if allowed:
            return _error(errors.ApiError(405, 40510000, f"method {method} is not allowed on "
                                          f"{path}; use {', '.join(sorted(allowed))}"))
        return _error(errors.not_found(f"endpoint not found: {method} {path}"))
    try:
        body = _parse_body(raw)
        with sim.lock:
            sim.exchange.settle()  # what happened since the last request (order lifecycle)
            return route.handler(Request(sim, method, path, params, body, match))
    except errors.ApiError as exc:
        return _error(exc)
    except Exception as exc:  # a bug: answer 500 like Alpaca, and show it
        traceback.print_exc(file=sys.stderr)
        return _error(errors.ApiError(500, errors.INTERNAL, f"internal error: {exc!r}"))


def _route(method: str, path: str):
    allowed = set()
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        if route.method == method:
            return route, match, allowed
        allowed.add(route.method)
    return None, None, allowed


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.malformed("request body is not valid JSON") from None
    except RecursionError:
        raise errors.malformed("request body is nested too deeply") from None


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON (RFC 8259) does not have.
    raise errors.malformed(f"request body is not valid JSON: {name} is not a JSON number")


def _refuse_busy(connection: socket.socket) -> None:
    body = json.dumps(errors.for_status(503, "the exchange is serving too many connections; "
                                        "retry").body()).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
            f"charset=UTF-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        connection.settimeout(1.0)
        connection.sendall(head.encode() + body)
    except OSError:
        pass


def _unauthorized(path: str) -> Response:
    """Bad or missing keys: the Trading API answers 401; the Market Data API 403 (its FAQ, "Why
    am I getting HTTP 403": "the request was not authenticated")."""
    if ratelimit.api_of(path) == "data":
        return _error(errors.ApiError(403, errors.UNAUTHORIZED, "request is not authorized"))
    return _error(errors.unauthorized())


def _error(exc: errors.ApiError) -> Response:
    return Response(exc.status, exc.body())
