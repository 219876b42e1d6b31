"""A loopback server that speaks Exa's search API, for the enrichment tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SearchScript:
    status: int = 200
    delay: float = 0.0
    results: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": f"https://example.org/clinics/{i}",
                "url": f"https://example.org/clinics/{i}",
                "title": f"Rural clinic staffing report {i}",
                "score": 0.9 - i / 10,
                "publishedDate": "2026-05-01T00:00:00.000Z",
                "author": None,
                "text": f"Clinic managers in rural areas juggle staffing gaps and supply delays (finding {i}).",
            }
            for i in range(1, 4)
        ]
    )


class FakeExaServer:
    def __init__(self) -> None:
        self.script = SearchScript()
        self.requests: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self.base_url = ""

    def __enter__(self) -> FakeExaServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                script = fake.script
                deadline = time.monotonic() + script.delay
                while time.monotonic() < deadline:
                    time.sleep(0.01)
                if self.path != "/search":
                    payload, status = {"error": "not found"}, 404
                elif script.status != 200:
                    payload, status = (
                        {"error": f"failure {script.status}", "echo": self.headers.get("x-api-key")},
                        script.status,
                    )
                else:
                    payload = {"requestId": "req-1", "resolvedSearchType": "neural", "results": script.results}
                    status = 200
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
