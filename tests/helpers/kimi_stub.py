"""A Kimi stand-in: a real HTTP server on loopback speaking the OpenAI-compatible chat API.

It streams Server-Sent Events the way Kimi does (a role chunk, content chunks, a final chunk
with `finish_reason` and `usage` inside the choice, then `data: [DONE]`) and fails the way
Kimi fails: an HTTP error with Kimi's error body, a stream that stalls, or one that stops
without `finish_reason`. Tests run it in a thread; benchmarks run it as a process:

    python -m tests.helpers.kimi_stub --port 8765 --tokens 200 --rate 50
"""

import argparse
import asyncio
import base64
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


def _model(model_id: str, window: int, images=False, video=False, reasoning=False) -> dict:
    """A model as Kimi's GET /v1/models lists it."""
    return {
        "id": model_id,
        "object": "model",
        "created": 1700000000,
        "owned_by": "moonshot",
        "context_length": window,
        "supports_image_in": images,
        "supports_video_in": video,
        "supports_reasoning": reasoning,
    }


# What Kimi offers today (December 2026), as its models endpoint describes them.
MODELS = [
    _model("kimi-k3", 1048576, images=True, video=True, reasoning=True),
    _model("kimi-k2.6", 262144, images=True, video=True, reasoning=True),
]
# What it offered before it retired them: asked for now, they answer 404. A test of how
# KimiChat behaved against that older Kimi serves them again (`Script(models=LEGACY_MODELS)`).
RETIRED_MODELS = [
    _model("kimi-k2.5", 262144, images=True, video=True, reasoning=True),
    _model("kimi-k2-thinking", 262144, reasoning=True),
    _model("kimi-k2-0905-preview", 262144),
    _model("moonshot-v1-8k", 8192),
    _model("moonshot-v1-32k", 32768),
    _model("moonshot-v1-128k", 131072),
    _model("moonshot-v1-auto", 131072),
    _model("moonshot-v1-8k-vision-preview", 8192, images=True),
]
LEGACY_MODELS = MODELS + RETIRED_MODELS


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
    held_after: int | None = None  # send this many tokens, then wait until `release`
    finish: bool = True  # False: the stream ends (with [DONE]) without a finish_reason
    usage_in_choice: bool = True  # Kimi's legacy place for usage; False: a separate usage chunk
    message: str | None = None  # overrides the message of the error body
    # Errors answered first, one request each, before the script's own behaviour:
    # (status, error type or None), e.g. [(429, "engine_overloaded_error")].
    failures: list = field(default_factory=list)
    retry_after: str | None = None  # a Retry-After header on those errors
    title: str = "A stub title"  # the answer to a request that is not streamed
    file_text: str = "Text that Kimi read from the file."  # file-extract's result (OCR)
    # GET /v1/models: the models listed (as MODELS shows them), or an error status instead;
    # with `models_held` set, the answer waits until it is released (`release`).
    models: list[dict] = field(default_factory=lambda: [dict(m) for m in MODELS])
    models_status: int = 200
    models_held: bool = False
    # GET /v1/users/me/balance: the account's balance (Kimi's `data`), or an error status.
    balance: dict = field(
        default_factory=lambda: {
            "available_balance": 49.58894,
            "voucher_balance": 46.58893,
            "cash_balance": 3.00001,
        }
    )
    balance_status: int = 200
    # What a thinking model thinks before it answers, streamed as `reasoning_content` (for
    # kimi-k2-thinking always; for kimi-k2.5/k2.6 unless the request turns thinking off).
    reasoning: list[str] = field(default_factory=lambda: ["Let me", " think", " about", " it."])
    # What a web search asks, when the request offers $web_search or the web_search formula:
    # one call per query, then, once the calls come back, the answer.
    searches: list[str] = field(default_factory=lambda: ["kimi web search"])
    # Pages Kimi reads with the fetch formula (where it is offered), one round after the
    # searches.
    fetches: list[str] = field(default_factory=list)
    # More rounds of searching after those (one query each): a Kimi that never stops asking.
    more_searches: int = 0
    # Formulas whose fibers fail (by name), and whether /v1/formulas exists at all (False: 404,
    # a Kimi without official tools).
    failing_fibers: list[str] = field(default_factory=list)
    formulas: bool = True
    finish_reason: str = "stop"  # e.g. "length": cut off by its max tokens
    # Of the prompt, served from Kimi's context cache; None: as much of it as repeats the start
    # of an earlier prompt to the same model (Kimi's implicit prefix cache).
    cached_tokens: int | None = None
    # Function calls Kimi makes, (name, arguments JSON), when the request offers a function of
    # that name: a round of them after the last user message (`function_rounds` rounds, one
    # per request, for a Kimi that keeps calling), then the answer; none with
    # tool_choice "none".
    function_calls: list = field(default_factory=list)
    function_rounds: int = 1


@dataclass
class Request:
    body: dict
    headers: dict
    closed_early: bool = False  # the client went away before the stream ended
    first_chunk_at: float | None = None  # time.monotonic() of the first content chunk
    last_chunk_at: float | None = None
    first_thought_at: float | None = None  # time.monotonic() of the first reasoning chunk
    usage: dict | None = None  # what Kimi counted, as it reported it


class KimiStub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.script = Script()
        self.requests: list[Request] = []
        # Files uploaded to the Files API (file-extract), by id: what was sent, and whether
        # it was deleted again.
        self.files: dict[str, dict] = {}
        # Web searches asked for, by call id: the arguments that must come back unchanged.
        self.searched: dict[str, str] = {}
        # Formula calls asked for, by call id: (name, arguments as Kimi wrote them); the fibers
        # run, in order, as {name, arguments, output}; the declarations read (by formula).
        self.called: dict[str, tuple[str, str]] = {}
        self.fibers: list[dict] = []
        self.declared: list[str] = []
        # Every prompt seen (its messages as Kimi reads them), for the prefix cache.
        self._prompts: list[tuple[str, str]] = []
        # The account's endpoints asked (/v1/models, /v1/users/me/balance), in order.
        self.reads: list[str] = []
        self._released = asyncio.Event()
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None

    def reset(self) -> None:
        """As new: today's Kimi, nothing asked yet, nothing cached."""
        self.script = Script()
        self.requests.clear()
        self.reads.clear()
        self.called.clear()
        self.fibers.clear()
        self.declared.clear()
        self._prompts.clear()

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
        if method == "GET" and path in ("/v1/models", "/v1/users/me/balance"):
            await self._account(path, headers, writer)
        elif path.startswith("/v1/files"):
            await self._files(method, path, headers, body, writer)
        elif path.startswith("/v1/formulas/"):
            await self._formula(method, path, headers, body, writer)
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

    async def _account(self, path, headers, writer) -> None:
        """What Kimi says of the account: the models it offers, and its balance."""
        script = self.script
        self.reads.append(path)
        self._notify()
        if path == "/v1/models" and script.models_held:
            await self._released.wait()
        status = script.models_status if path == "/v1/models" else script.balance_status
        if headers.get("authorization") != "Bearer sk-test":
            status = 401
        if status != 200:
            error_type, message = ERRORS.get(status, ("server_error", "error"))
            await self._json(writer, status, {"error": {"type": error_type, "message": message}})
        elif path == "/v1/models":
            await self._json(writer, 200, {"object": "list", "data": script.models})
        else:
            body = {"code": 0, "data": script.balance, "scode": "0x0", "status": True}
            await self._json(writer, 200, body)

    def hold_models(self) -> None:
        """GET /v1/models waits, from now until `release`, before it answers."""
        self.script.models_held = True
        self._released = asyncio.Event()

    def hold_stream(self, after: int) -> None:
        """The next answers send `after` tokens (after all their thoughts), then wait until
        `release`: a page to look at mid-answer, for as long as it takes."""
        self.script.held_after = after
        self._released = asyncio.Event()

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._released.set)

    async def _files(self, method, path, headers, body, writer) -> None:
        """Kimi's Files API, as file-extract uses it: upload, content, delete."""
        if headers.get("authorization") != "Bearer sk-test":
            error = {"type": "invalid_authentication_error", "message": "Invalid Authentication"}
            await self._json(writer, 401, {"error": error})
            return
        parts = path.rstrip("/").split("/")  # ['', 'v1', 'files', id, 'content']
        if method == "POST" and len(parts) == 3:
            file_id = f"file_stub{len(self.files) + 1}"  # today's ids carry "file_"
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

    async def _formula(self, method, path, headers, body, writer) -> None:
        """Kimi's official tools: a formula's declarations (GET …/tools) and a call run
        (POST …/fibers). web-search's output is protected: it comes back encrypted."""
        if headers.get("authorization") != "Bearer sk-test":
            error = {"type": "invalid_authentication_error", "message": "Invalid Authentication"}
            await self._json(writer, 401, {"error": error})
            return
        match = re.fullmatch(r"/v1/formulas/moonshot/([a-z-]+):latest/(tools|fibers)", path)
        formula = match.group(1) if match else ""
        if not self.script.formulas or formula not in FORMULAS:
            error = {"type": "resource_not_found_error", "message": "Not found"}
            await self._json(writer, 404, {"error": error})
            return
        if method == "GET" and match.group(2) == "tools":
            self.declared.append(formula)
            self._notify()
            await self._json(writer, 200, {"object": "list", "tools": [FORMULAS[formula]]})
            return
        asked = json.loads(body or b"{}")
        name, arguments = asked.get("name"), asked.get("arguments")
        if (name, arguments) not in self.called.values():
            error = {"type": "invalid_request_error", "message": "Invalid request: arguments"}
            await self._json(writer, 400, {"error": error})
            return
        fiber = {"id": f"fiber-{len(self.fibers) + 1}", "object": "fiber"}
        if name in self.script.failing_fibers:
            fiber.update(status="failed", error={"message": "The formula failed"})
            output = None
        else:
            output = _fiber_output(name, arguments)
            key = "encrypted_output" if name == "web_search" else "output"
            fiber.update(status="succeeded", context={key: output})
        self.fibers.append({"name": name, "arguments": arguments, "output": output})
        self._notify()
        await self._json(writer, 200, fiber)

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
        model = request.body.get("model", "")
        if status == 200 and model not in {m["id"] for m in script.models}:
            message = f"Not found the model {model} or Permission denied"
            body = {"type": "resource_not_found_error", "message": message}
            await self._json(writer, 404, {"error": body})
            return
        refusal = self._refusal(request.body) if status == 200 else None
        if refusal is not None:
            body = {"type": "invalid_request_error", "message": refusal}
            await self._json(writer, 400, {"error": body})
            return
        if status != 200:
            error_type, message = ERRORS.get(status, ("server_error", "error"))
            body = {"type": kind or error_type, "message": script.message or message}
            await self._json(writer, status, {"error": body}, headers)
            return
        if not request.body.get("stream"):
            if script.stall_after is not None:
                await reader.read(1)  # no answer until the client gives up
                request.closed_early = True
                self._notify()
                return False
            text = script.title
            message = {"role": "assistant", "content": text}
            if thinks(request.body):
                message["reasoning_content"] = "".join(script.reasoning)
            calls = self._calls(request.body)
            if calls:
                message["content"] = ""
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in calls
                ]
            await self._json(
                writer,
                200,
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": "tool_calls" if calls else "stop",
                        }
                    ],
                    "model": request.body.get("model", ""),
                    "usage": self._usage(request, len(text.split())),
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
            calls = self._calls(request.body)
            for i, thought in enumerate(self._thoughts(request.body)):
                if script.delay and i:
                    await asyncio.wait([client_left], timeout=script.delay)
                if client_left.done():
                    break
                delta = {"reasoning_content": thought}
                writer.write(event([{"index": 0, "delta": delta, "finish_reason": None}]))
                await writer.drain()
                if request.first_thought_at is None:
                    request.first_thought_at = time.monotonic()
                self._notify()
            for index, (call_id, name, arguments) in enumerate(calls):
                # A tool call comes in pieces: its id and name first, its arguments after.
                cut = len(arguments) // 2
                named = {"name": name, "arguments": ""}
                for piece in (
                    {"id": call_id, "type": "function", "function": named},
                    {"function": {"arguments": arguments[:cut]}},
                    {"function": {"arguments": arguments[cut:]}},
                ):
                    delta = {"tool_calls": [{"index": index, **piece}]}
                    writer.write(event([{"index": 0, "delta": delta, "finish_reason": None}]))
                await writer.drain()
                self._notify()
            for i, token in enumerate([] if calls else self._tokens(request.body)):
                if i == script.held_after:
                    await writer.drain()
                    released = asyncio.ensure_future(self._released.wait())
                    await asyncio.wait([client_left, released], return_when=asyncio.FIRST_COMPLETED)
                    released.cancel()
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
            usage = self._usage(request, len(script.tokens) + len(self._thoughts(request.body)))
            finish = ("tool_calls" if calls else script.finish_reason) if script.finish else None
            final = {"index": 0, "delta": {}, "finish_reason": finish}
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

    # Kimi's own features: thinking, $web_search, partial mode (docs/how-it-works.md, Kimi today).

    def _tokens(self, body: dict) -> list[str]:
        """The answer's tokens; in partial mode, as Kimi does, only what follows the prefix
        when the script's answer starts with it (a prefix it would not write gets the whole
        script after it)."""
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        tokens = self.script.tokens
        prefix = last.get("content", "") if last.get("partial") else ""
        if not prefix or not "".join(tokens).startswith(prefix):
            return tokens
        rest, written = [], 0
        for token in tokens:
            if written >= len(prefix):
                rest.append(token)
            elif written + len(token) > len(prefix):
                rest.append(token[len(prefix) - written :])  # the rest of a token cut in two
            written += len(token)
        return rest

    def _thoughts(self, body: dict) -> list[str]:
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        if last.get("partial") and last.get("reasoning_content"):
            return []  # Continue with the reasoning so far: it thought already
        return self.script.reasoning if thinks(body) else []

    def _usage(self, request: Request, completion: int) -> dict:
        """What Kimi counts: the prompt (and of it, what repeats an earlier prompt's start to
        the same model with the same effort, from its cache), the completion, the searches."""
        body = request.body
        prompt = _count(body)
        seen = json.dumps(body.get("messages", []), ensure_ascii=False, sort_keys=True)
        key = f"{body.get('model')}/{body.get('reasoning_effort')}"
        cached = self.script.cached_tokens
        if cached is None:
            common = max(
                (_common(seen, earlier) for k, earlier in self._prompts if k == key), default=0
            )
            cached = prompt * common // max(len(seen), 1)
        self._prompts.append((key, seen))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cached_tokens": cached,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        request.usage = usage
        return usage

    def _calls(self, body: dict) -> list[tuple[str, str, str]]:
        """The tool calls to make (id, name, arguments): with $web_search offered, one per
        query until they come back; with the formulas declared, a round of searches, then a
        round of pages read, then `more_searches` rounds, one round per request."""
        offered = {tool.get("function", {}).get("name") for tool in body.get("tools", [])}
        messages = body.get("messages", [])
        if offered & {name for name, _arguments in self.script.function_calls}:
            users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
            since = messages[users[-1] + 1 :] if users else messages
            rounds = sum(1 for m in since if m.get("tool_calls"))
            if rounds >= self.script.function_rounds or body.get("tool_choice") == "none":
                return []
            return [
                (f"fn-{len(self.requests)}-{i}", name, arguments)
                for i, (name, arguments) in enumerate(self.script.function_calls)
                if name in offered
            ]
        if body.get("tool_choice") == "none":
            return []
        if WEB_SEARCH in offered:
            if any(m.get("role") == "tool" for m in messages):
                return []
            calls = []
            for query in self.script.searches:
                call_id = f"call-{len(self.searched) + 1}"
                arguments = json.dumps({"search_result": {"search_id": call_id, "query": query}})
                self.searched[call_id] = arguments
                calls.append((call_id, WEB_SEARCH, arguments))
            return calls
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        since = messages[users[-1] + 1 :] if users else messages
        done = sum(1 for m in since if m.get("tool_calls"))
        plan = [
            [("web_search", {"query": q}) for q in self.script.searches],
            [("fetch", {"url": url}) for url in self.script.fetches],
        ]
        plan = [round_ for round_ in plan if round_]
        plan += [[("web_search", {"query": f"more {i}"})] for i in range(self.script.more_searches)]
        if done >= len(plan):
            return []
        calls = []
        for name, arguments in plan[done]:
            if name in offered:
                call_id = f"{name}:{len(self.called)}"
                # Kimi's own spelling (spaces after the separators): it must come back as is.
                self.called[call_id] = (name, json.dumps(arguments, ensure_ascii=False))
                calls.append((call_id, name, self.called[call_id][1]))
        return calls

    def _refusal(self, body: dict) -> str | None:
        """What Kimi answers 400 to: kimi-k3 told not to think, or given sampling or an effort
        of its own; a search handed back changed; a tool-call turn of a thinking request
        without its reasoning; a partial prefix that is not the last turn."""
        refused = _fixed(body)
        if refused:
            return refused
        messages = body.get("messages", [])
        failed = {(f["name"], f["arguments"]) for f in self.fibers if f["output"] is None}
        outputs = {(f["name"], f["arguments"]): f["output"] for f in self.fibers}
        for index, message in enumerate(messages):
            if message.get("role") == "tool":
                call_id = message.get("tool_call_id")
                if str(call_id).startswith("fn-"):
                    continue  # the script's own function calls: the client's to answer
                if call_id in self.called:
                    ran = self.called[call_id]
                    # A call the app did not run (it had called enough) may say anything.
                    ran_ok = ran in outputs and ran not in failed
                    if ran_ok and message.get("content") != outputs[ran]:
                        return "Invalid request: the tool message must carry the fiber's output"
                    continue
                if body.get("model", "").startswith("kimi-k3"):
                    return "Invalid request: tokenization failed"
                made = self.searched.get(call_id)
                if made is None or message.get("content") != made:
                    return "Invalid request: the tool message must carry the call's arguments"
            if message.get("tool_calls") and thinks(body) and not message.get("reasoning_content"):
                return (
                    "Invalid request: thinking is enabled but reasoning_content is missing in "
                    f"assistant tool call message at index {index}"
                )
        for message in messages[:-1]:
            if message.get("partial"):
                return "Invalid request: only the last message may be partial"
        return None

    def stats(self) -> dict:
        return {
            "requests": len(self.requests),
            "closed_early": sum(r.closed_early for r in self.requests),
            # By question: its first and last words, and its first thought.
            # What Kimi counted for each request, in order (cached tokens included).
            "usage": [r.usage for r in self.requests],
            "chunks": {
                _last_user_text(r.body): [r.first_chunk_at, r.last_chunk_at, r.first_thought_at]
                for r in self.requests
            },
        }


THINK_ALWAYS = ("kimi-k3", "kimi-k2-thinking", "kimi-thinking-preview")
THINK_UNLESS_DISABLED = ("kimi-k2.5", "kimi-k2.6")
EFFORTS = ("low", "high", "max")
WEB_SEARCH = "$web_search"

# Kimi's official tools, as GET /v1/formulas/moonshot/<formula>:latest/tools declares them.
FORMULAS = {
    "web-search": {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web for up-to-date information.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to search for"},
                    "classes": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["query"],
            },
        },
    },
    "fetch": {
        "type": "function",
        "function": {
            "name": "fetch",
            "description": "Fetch a URL and return its content as text.",
            "parameters": {
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "max_length": {"type": "integer", "default": 5000},
                    "start_index": {"type": "integer", "default": 0},
                    "raw": {"type": "boolean", "default": False},
                },
                "required": ["url"],
            },
        },
    },
}


def _fiber_output(name: str, arguments: str) -> str:
    """What a fiber returns: web-search's results encrypted (opaque to the app), fetch's page."""
    asked = json.loads(arguments)
    if name == "web_search":
        sealed = base64.b64encode(f"results for {asked.get('query')}".encode()).decode()
        return f"----MOONSHOT ENCRYPTED BEGIN----{sealed}----MOONSHOT ENCRYPTED END----"
    return f"Title: A page\nURL: {asked.get('url')}\n\nThe page's text."


def _fixed(body: dict) -> str | None:
    """kimi-k3's refusals: it always thinks, its sampling is fixed, its effort is one of three."""
    if not body.get("model", "").startswith("kimi-k3"):
        return None
    if body.get("thinking", {}).get("type") == "disabled":
        return "Invalid request: thinking cannot be disabled for this model"
    for name, only in (("temperature", 1), ("top_p", 0.95), ("n", 1)):
        if name in body and body[name] != only:
            return f"invalid {name}: only {only} is allowed for this model"
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        return "invalid reasoning_effort: must be one of low, high, max"
    return None


def _common(a: str, b: str) -> int:
    """The length of the start two strings share."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while lo < hi:  # the longest equal start, by halves
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def thinks(body: dict) -> bool:
    """Whether Kimi thinks for this request (docs/how-it-works.md, Kimi today)."""
    model = body.get("model", "")
    if model.startswith(THINK_ALWAYS):
        return True
    disabled = body.get("thinking", {}).get("type") == "disabled"
    return model.startswith(THINK_UNLESS_DISABLED) and not disabled


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
