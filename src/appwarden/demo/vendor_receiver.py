"""A small real vendor erasure endpoint on 127.0.0.1, for the demo and the tests: it verifies each
request's signature as a vendor must (``appwarden.signatures.verify``) and answers 204, or 401 when the
signature is missing, wrong or stale; every request is recorded.

    url, stop = start(secrets)          # secrets: {app slug: endpoint secret}, filled in as they are set
    set_endpoint(..., f"{url}/{slug}")  # one path per app: the last segment picks the secret
    ...
    stop()

It passes the review's endpoint check (``obligations.endpoint_check``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from appwarden.signatures import SIGNATURE_HEADER, verify


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got: the app (path's last segment), headers, body and its answer."""

    app: str
    headers: dict[str, str]
    body: bytes
    status: int


def start(
    secrets: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
    received: list[Received] | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve on a free loopback port; return (base URL, stop). ``secrets`` is read at each request, so
    a secret registered after the start is honoured; ``clock`` is the receiver's now (unix seconds) for
    the replay window; ``received``, when given, collects every request."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            app = self.path.rstrip("/").rsplit("/", 1)[-1]
            secret = secrets.get(app)
            signature = self.headers.get(SIGNATURE_HEADER)
            ok = secret is not None and signature is not None and verify(secret, signature, body, now=clock())
            status = 204 if ok else 401
            if received is not None:
                received.append(Received(app, {k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # quiet: the demo prints its own lines

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="vendor-erasure-receiver")
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_address[1]}/erasure", stop
