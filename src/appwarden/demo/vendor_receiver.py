"""The demo's vendors' erasure endpoints: one real HTTP server on 127.0.0.1 that answers as a vendor should.

Each app's endpoint is ``<url>/vendors/<slug>/erasure``. A request whose ``X-Appwarden-Signature`` does
not verify with that app's secret (``appwarden.signatures.verify``, replay window included) gets 401;
a signed one gets 200 and is kept, so the demo can say what each vendor received. The clock is the
demo's: its erasure requests are signed on the demo's calendar, weeks after the traffic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from appwarden.signatures import SIGNATURE_HEADER, verify

BODY_LIMIT = 8 * 1024 * 1024  # a company.redact names every person received: generous, not unbounded


@dataclass
class VendorReceiver:
    """The running server: register each app's secret, read what arrived, stop it."""

    clock: Callable[[], float]
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def endpoint(self, slug: str) -> str:
        """The erasure endpoint the vendor of ``slug`` registers."""
        return f"{self.url}/vendors/{slug}/erasure"

    def answer(self, path: str, signature: str | None, body: bytes) -> int:
        """The status a careful vendor answers: 401 unless signed with the app's secret, else 200."""
        parts = path.strip("/").split("/")
        slug = parts[1] if len(parts) == 3 and parts[0] == "vendors" and parts[2] == "erasure" else None
        secret = self.secrets.get(slug or "")
        if secret is None or signature is None or not verify(secret, signature, body, now=self.clock()):
            with self._lock:
                self.refused += 1
            return 401
        try:
            document = json.loads(body)
        except ValueError:
            return 400
        with self._lock:
            self.received.append({"app": slug, **document})
        return 200

    def start(self) -> VendorReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status = 413 if length > BODY_LIMIT else None
                body = self.rfile.read(length) if status is None else b""
                status = status or receiver.answer(self.path, self.headers.get(SIGNATURE_HEADER), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # the demo prints its own summary
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
