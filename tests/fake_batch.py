"""A real HTTP server on 127.0.0.1 that speaks OpenAI's Files and Batch APIs, for the official client.

* ``POST /v1/files`` (multipart: ``file`` and ``purpose``) keeps the file and answers a ``file`` object;
  ``GET /v1/files/{id}/content`` answers its bytes.
* ``POST /v1/batches`` creates a batch from an uploaded JSONL file (status ``validating``);
  each ``GET /v1/batches/{id}`` moves it on one step: ``in_progress`` with ``per_poll`` more requests
  done each time, then ``finalizing``, then ``completed`` with an output file (and an error file when
  some requests failed). ``POST /v1/batches/{id}/cancel`` answers ``cancelling``; the next retrieve
  says ``cancelled``.

Each request of a batch is answered by ``answer(index, body)`` (a persona's JSON text by default);
``fail`` holds the indexes (the number after the last ``-`` of the custom id) whose request fails with
a 500 and ``fail_message``. Every request's method and path is kept in ``calls``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import persona_json

NAMES = ["Ana Costa", "Rui Almeida", "Marta Sousa", "Tiago Ferreira", "Inês Carvalho", "Pedro Gomes", "Sofia Lima"]


def default_answer(index: int, body: dict[str, Any]) -> str:
    return persona_json(NAMES[index % len(NAMES)] + ("" if index < len(NAMES) else f" {index}"))


class FakeBatchServer:
    def __init__(self, *, per_poll: int = 2) -> None:
        self.per_poll = per_poll
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: set[int] = set()
        self.fail_message = "The model is overloaded."
        self.answer: Callable[[int, dict[str, Any]], str] = default_answer
        self.lock = threading.Lock()
        self.reject: tuple[int, str] | None = None
        """Answer every request with this status and error message (a rejected key, say)."""
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeBatchServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ----- the objects -----

    def add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:12]}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = {"obj": obj, "data": data}
        return obj

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        data = self.files[body["input_file_id"]]["data"]
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        batch_id = f"batch_{uuid.uuid4().hex[:12]}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": int(time.time()),
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": None,
        }
        self.batches[batch_id] = {"obj": batch, "lines": lines, "done": 0}
        return batch

    def step(self, batch_id: str) -> dict[str, Any]:
        entry = self.batches[batch_id]
        batch, lines = entry["obj"], entry["lines"]
        status = batch["status"]
        if status == "cancelling":
            batch["status"] = "cancelled"
        elif status == "validating":
            batch["status"] = "in_progress"
        elif status == "in_progress":
            entry["done"] = min(len(lines), entry["done"] + self.per_poll)
            done = lines[: entry["done"]]
            failed = sum(self._index(line) in self.fail for line in done)
            batch["request_counts"] = {"total": len(lines), "completed": len(done) - failed, "failed": failed}
            if entry["done"] == len(lines):
                batch["status"] = "finalizing"
        elif status == "finalizing":
            self._finish(batch, lines)
        return batch

    @staticmethod
    def _index(line: dict[str, Any]) -> int:
        return int(str(line["custom_id"]).rsplit("-", 1)[1])

    def _finish(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        out, errors = [], []
        for line in lines:
            index = self._index(line)
            rid = f"req_{uuid.uuid4().hex[:8]}"
            if index in self.fail:
                error = {"error": {"message": self.fail_message, "type": "server_error"}}
                response = {"status_code": 500, "request_id": rid, "body": error}
                errors.append({"id": rid, "custom_id": line["custom_id"], "response": response, "error": None})
                continue
            content = self.answer(index, line["body"])
            body = {
                "id": f"chatcmpl-{rid}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": line["body"]["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300},
            }
            response = {"status_code": 200, "request_id": rid, "body": body}
            out.append({"id": rid, "custom_id": line["custom_id"], "response": response, "error": None})
        batch["status"] = "completed"
        batch["output_file_id"] = self._jsonl(out, "output")
        if errors:
            batch["error_file_id"] = self._jsonl(errors, "error")

    def _jsonl(self, rows: list[dict[str, Any]], name: str) -> str:
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        return str(self.add_file(data, f"batch_{name}.jsonl", "batch_output")["id"])


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBatchServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        fake, path = self.fake, self.path
        with fake.lock:
            fake.calls.append(("GET", path))
            if fake.reject is not None:
                return self._json(
                    {"error": {"message": fake.reject[1], "type": "invalid_request_error"}}, fake.reject[0]
                )
            parts = path.strip("/").split("/")
            if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content" and parts[2] in fake.files:
                self._send(200, fake.files[parts[2]]["data"], "application/octet-stream")
            elif parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in fake.batches:
                self._json(fake.step(parts[2]))
            else:
                self._json({"error": {"message": f"No such path {path}", "type": "invalid_request_error"}}, 404)

    def do_POST(self) -> None:
        fake, path, raw = self.fake, self.path, self._body()
        with fake.lock:
            fake.calls.append(("POST", path))
            if fake.reject is not None:
                return self._json(
                    {"error": {"message": fake.reject[1], "type": "invalid_request_error"}}, fake.reject[0]
                )
            parts = path.strip("/").split("/")
            if parts == ["v1", "files"]:
                self._json(self._upload(raw))
            elif parts == ["v1", "batches"]:
                self._json(fake.create_batch(json.loads(raw)))
            elif parts[:2] == ["v1", "batches"] and len(parts) == 4 and parts[3] == "cancel":
                batch = fake.batches[parts[2]]["obj"]
                batch["status"] = "cancelling"
                self._json(batch)
            else:
                self._json({"error": {"message": f"No such path {path}", "type": "invalid_request_error"}}, 404)

    def _upload(self, raw: bytes) -> dict[str, Any]:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=default_policy).parsebytes(head + raw)
        data, filename, purpose = b"", "upload.jsonl", ""
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "file":
                data, filename = payload, part.get_filename() or filename
            elif name == "purpose":
                purpose = payload.decode()
        return self.fake.add_file(data, filename, purpose)
