"""A Kimi stand-in: a real HTTP server on loopback speaking the OpenAI-compatible chat API.

It streams Server-Sent Events the way Kimi does (a role chunk, content chunks, a final chunk
with `finish_reason` and `usage` inside the choice, then `data: [DONE]`) and fails the way
Kimi fails: an HTTP error with Kimi's error body, a stream that stalls, or one that stops
without `finish_reason`. Tests run it in a thread; benchmarks run it as a process:

    python -m tests.kimi_stub --port 8765 --tokens 200 --rate 50
"""

import argparse
import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field

ERRORS = {
    400: (
        "invalid_request_error",
        "Invalid request: Your request exceeded model token limit: 8192",
    ),
    401: ("invalid_authentication_error", "Invalid Authentication"),
    403: ("exceeded_current_quota_error", "Your account is not active, please check your billing"),
    404: ("resource_not_found_error", "Not found the model or Permission denied"),
    429: (
        "rate_limit_reached_error",
        "Your account reached max request, please try again after 1 seconds",
    ),
    500: ("server_error", "Internal server error"),
}


@dataclass
class Script:
    """What the next responses do. Tests change it between messages."""

    tokens: list[str] = field(
        default_factory=lambda: ["Hello", " from", " the", " Kimi", " stub", "."]
    )
    delay: float = 0.0  # seconds between content chunks
    status: int = 200  # an error status answers with Kimi's error body instead of a stream
    error_type: str | None = None  # overrides the type of the error body
    stall_after: int | None = None  # send this many tokens, then nothing, until the client leaves
    finish: bool = True  # False: the stream ends (with [DONE]) without a finish_reason
    usage_in_choice: bool = True  # Kimi's legacy place for usage; False: a separate usage chunk
    message: str | None = None  # overrides the message of the error body
    # Errors answered first, one request each, before the script's own behaviour:
    # (status, error type or None), e.g. [(429, "engine_overloaded_error")].
    failures: list = field(default_factory=list)
    retry_after: str | None = None  # a Retry-After header on those errors
    title: str = "A stub title"  # the answer to a request that is not streamed
    file_text: str = "Text that Kimi read from the file."  # file-extract's result (OCR)


@dataclass
class Request:
    body: dict
    headers: dict
    closed_early: bool = False  # the client went away before the stream ended
    first_chunk_at: float | None = None  # time.monotonic() of the first content chunk
    last_chunk_at: float | None = None


class KimiStub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.script = Script()
        self.requests: list[Request] = []
        # Files uploaded to the Files API (file-extract), by id: what was sent, and whether
        # it was deleted again.
        self.files: dict[str, dict] = {}
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # Waiting on events instead of sleeping.

    def _notify(self) -> None:
        # Every change a test may wait on (a request, a chunk, a client leaving, a file
        # uploaded or deleted) calls this; a change that did not would leave `wait_for`
        # sleeping to its timeout. Without waiters it costs well under a microsecond.
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError("the Kimi stub did not see what the test waited for")

    # Running in a thread (tests) or in the foreground (benchmarks).

    def start_in_thread(self) -> "KimiStub":
        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            started.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="kimi-stub").start()
        started.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self._start()
        async with self._server:
            await self._server.serve_forever()

    # HTTP/1.1 with keep-alive, just enough for the openai SDK's transports.

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                keep_alive = await self._route(
                    method, path.split("?")[0], headers, body, reader, writer
                )
                if keep_alive is False:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, method, path, headers, body, reader, writer) -> None:
        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "context_length": 131072}
                for m in ("moonshot-v1-8k", "kimi-k2.5")
            ]
            await self._json(writer, 200, {"object": "list", "data": data})
        elif path.startswith("/v1/files"):
            await self._files(method, path, headers, body, writer)
        elif method == "GET" and path == "/_stats":
            await self._json(writer, 200, self.stats())
        elif method == "POST" and path == "/v1/chat/completions":
            request = Request(json.loads(body or b"{}"), headers)
            self.requests.append(request)
            self._notify()
            return await self._chat(request, reader, writer)
        else:
            await self._json(
                writer, 404, {"error": {"type": "resource_not_found_error", "message": "Not found"}}
            )

    async def _files(self, method, path, headers, body, writer) -> None:
        """Kimi's Files API, as file-extract uses it: upload, content, delete."""
        if headers.get("authorization") != "Bearer sk-test":
            error = {"type": "invalid_authentication_error", "message": "Invalid Authentication"}
            await self._json(writer, 401, {"error": error})
            return
        parts = path.rstrip("/").split("/")  # ['', 'v1', 'files', id, 'content']
        if method == "POST" and len(parts) == 3:
            file_id = f"file-stub-{len(self.files) + 1}"
            name = re.search(rb'filename="([^"]*)"', body)
            purpose = re.search(rb'name="purpose"\r\n\r\n([^\r]*)', body)
            self.files[file_id] = {
                "filename": name.group(1).decode() if name else "",
                "purpose": purpose.group(1).decode() if purpose else "",
                "bytes": len(body),
                "deleted": False,
            }
            self._notify()
            meta = {"id": file_id, "object": "file", "bytes": len(body), "created_at": 0}
            meta.update(filename=self.files[file_id]["filename"], purpose="file-extract")
            await self._json(writer, 200, {**meta, "status": "ok"})
        elif len(parts) >= 4 and parts[3] in self.files:
            file_id = parts[3]
            if method == "GET" and parts[-1] == "content":
                content = {"content": self.script.file_text, "file_type": "application/pdf"}
                content.update(filename=self.files[file_id]["filename"], type="file")
                await self._json(writer, 200, content)
            elif method == "DELETE":
                self.files[file_id]["deleted"] = True
                self._notify()
                await self._json(writer, 200, {"id": file_id, "object": "file", "deleted": True})
        else:
            await self._json(
                writer, 404, {"error": {"type": "resource_not_found_error", "message": "Not found"}}
            )

    @property
    def streams(self) -> list[Request]:
        """The streamed completions (answers), not the small requests (titles)."""
        return [r for r in self.requests if r.body.get("stream")]

    async def _json(self, writer, status: int, payload: dict, headers: str = "") -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _chat(self, request: Request, reader, writer) -> bool:
        """Answer a completion; False when the connection must close after it."""
        script = self.script
        headers = ""
        if request.headers.get("authorization") != "Bearer sk-test":
            status, kind = 401, None
        elif script.failures:
            status, kind = script.failures.pop(0)
            if script.retry_after is not None:
                headers = f"Retry-After: {script.retry_after}\r\n"
        else:
            status, kind = script.status, script.error_type
        if status != 200:
            error_type, message = ERRORS.get(status, ("server_error", "error"))
            body = {"type": kind or error_type, "message": script.message or message}
            await self._json(writer, status, {"error": body}, headers)
            return
        if not request.body.get("stream"):
            text = script.title
            await self._json(
                writer,
                200,
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ]
                },
            )
            return

        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        model = request.body.get("model", "")
        base = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        # The client sends nothing more on a closing connection: a read ends only when it leaves.
        client_left = asyncio.ensure_future(reader.read(1))

        def event(choices: list, **extra) -> bytes:
            data = b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n"
            return b"%x\r\n%s\r\n" % (len(data), data)

        try:
            writer.write(
                event(
                    [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ]
                )
            )
            for i, token in enumerate(script.tokens):
                if script.stall_after is not None and i >= script.stall_after:
                    await writer.drain()
                    await client_left  # silence until the client gives up
                    break
                if script.delay and i:
                    await asyncio.wait([client_left], timeout=script.delay)
                if client_left.done():
                    break
                writer.write(
                    event([{"index": 0, "delta": {"content": token}, "finish_reason": None}])
                )
                await writer.drain()
                now = time.monotonic()
                if request.first_chunk_at is None:
                    request.first_chunk_at = now
                request.last_chunk_at = now
                self._notify()
            if client_left.done():
                request.closed_early = True
                return False
            usage = {
                "prompt_tokens": _count(request.body),
                "completion_tokens": len(script.tokens),
                "total_tokens": 0,
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            final = {"index": 0, "delta": {}, "finish_reason": "stop" if script.finish else None}
            if script.usage_in_choice:
                final["usage"] = usage
                writer.write(event([final]))
            else:
                writer.write(event([final]) + event([], usage=usage))
            writer.write(b"%x\r\ndata: [DONE]\n\n\r\n0\r\n\r\n" % len(b"data: [DONE]\n\n"))
            await writer.drain()
        except ConnectionError:
            request.closed_early = True
        finally:
            if not client_left.done():
                client_left.cancel()
            self._notify()
        return False

    def stats(self) -> dict:
        return {
            "requests": len(self.requests),
            "closed_early": sum(r.closed_early for r in self.requests),
            "chunks": {
                _last_user_text(r.body): [r.first_chunk_at, r.last_chunk_at] for r in self.requests
            },
        }


def _last_user_text(body: dict) -> str:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _count(body: dict) -> int:
    return sum(len(str(m.get("content", ""))) // 4 + 1 for m in body.get("messages", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tokens", type=int, default=200, help="content chunks per answer")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second per stream")
    args = parser.parse_args()
    stub = KimiStub(args.host, args.port)
    stub.script = Script(tokens=[f" t{i}" for i in range(args.tokens)], delay=1 / args.rate)
    asyncio.run(stub.serve_forever())


if __name__ == "__main__":
    main()
