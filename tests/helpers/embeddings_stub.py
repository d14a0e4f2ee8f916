"""An embeddings server stand-in: a real HTTP server on loopback speaking the OpenAI-compatible
embeddings API (`POST /v1/embeddings`, as TEI, Ollama and vLLM serve it), for EMBEDDINGS_URL.

Its model is small and plain: a text's words (each Chinese character a word) counted into
`dimensions` slots by a hash of each word; a word listed in `same` counts as the word it names,
so the model "knows" they mean the same. It fails the way servers fail: an HTTP error with an
OpenAI-style error body (`status`), or a connection closed without an answer (`hang_up`).
"""

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    model: str
    inputs: list[str]
    authorization: str


@dataclass
class EmbeddingsStub:
    dimensions: int = 384
    status: int = 200
    hang_up: bool = False
    same: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def start_in_thread(self) -> "EmbeddingsStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stub._answer(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def vector(self, text: str) -> list[float]:
        total = [0.0] * self.dimensions
        for word in re.findall(r"[\u4e00-\u9fff]|\w+", text.lower()):
            word = self.same.get(word, word)
            total[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dimensions] += 1
        return total

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        if request.path != "/v1/embeddings":
            return self._send(request, 404, {"error": {"message": "Not found"}})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.seen.append(Seen(body["model"], inputs, request.headers.get("Authorization", "")))
        if self.hang_up:
            request.close_connection = True
            return
        if self.status != 200:
            error = {"message": "The model is overloaded", "type": "server_error"}
            return self._send(request, self.status, {"error": error})
        data = [
            {"object": "embedding", "index": i, "embedding": self.vector(text)}
            for i, text in enumerate(inputs)
        ]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        answer = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        self._send(request, 200, answer)

    def _send(self, request: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        content = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        request.wfile.write(content)
