"""A local HTTP endpoint for wire-level tests: records every request, fails the first N on purpose.

with RecordingServer(fail=[(503, {"Retry-After": "0"})]) as srv:
    ...post to srv.url...
    srv.requests[0].body
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    #: responses for the first requests, in order: (status, headers); then ``status`` for the rest
    fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    status: int = 204
    #: optional per-request decision: (status, headers) or (status, headers, body), or None for the default
    decide: Callable[[Request], tuple[Any, ...] | None] | None = None
    requests: list[Request] = field(default_factory=list)  # every request, failed ones included
    accepted: list[Request] = field(default_factory=list)  # those answered 2xx

    def __enter__(self) -> RecordingServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n))
                with owner._lock:
                    owner.requests.append(req)
                    answer = owner.decide(req) if owner.decide else None
                    if answer is None:
                        answer = owner.fail.pop(0) if owner.fail else (owner.status, {})
                    if 200 <= answer[0] < 300:
                        owner.accepted.append(req)
                status, headers = answer[0], answer[1]
                body = (
                    answer[2]
                    if len(answer) > 2
                    else b""
                    if status == 204
                    else b'{"status":"ok"}'
                    if status < 300
                    else b"nope"
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
