"""What KimiChat knows of Kimi's models: which are offered, their context windows, which see
images and which think, room kept for the answer, and a local token estimate (docs/how-it-works.md,
"Kimi today").

Kimi says which models it offers and what each can do (GET /v1/models). Each server process
reads that in the background once it serves its first request, then every KIMI_MODELS_REFRESH
seconds (`keep_fresh`, called by the ASGI application). All the rest is synchronous and reads
only what was read last, never Kimi itself, so no page and no message waits on Kimi.
Where Kimi was not reached (no key, Kimi down, KIMI_MODELS_REFRESH=0) or does not describe a
model, the built-in rules below answer.
"""

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass

import openai
from django.conf import settings

import kimi

log = logging.getLogger(__name__)

# Context windows in tokens of today's models, for while Kimi has not been read (kimi-k3's
# 1M; the kimi-k2 family's 256k). What Kimi's /v1/models says wins.
CONTEXT_WINDOWS = {"kimi-k3": 1048576}


def context_window(model: str) -> int:
    """The operator's KIMI_CONTEXT_WINDOWS first, then what Kimi says, then the table and the
    names' rules."""
    if model in settings.KIMI_CONTEXT_WINDOWS:
        return settings.KIMI_CONTEXT_WINDOWS[model]
    described = kimi_says(model)
    if described is not None and described.context_length:
        return described.context_length
    for prefix, window in CONTEXT_WINDOWS.items():
        if model.startswith(prefix):
            return window
    return 262144


IMAGE_TOKENS = 1024  # what Kimi's help centre gives for one image

# Models that take images in a message.
VISION_PREFIXES = ("kimi-k2.5", "kimi-k2.6", "kimi-k3")


def accepts_images(model: str) -> bool:
    described = kimi_says(model)
    if described is not None and described.images is not None:
        return described.images
    return "vision" in model or model.startswith(VISION_PREFIXES)


def answer_reserve(model: str, max_tokens: int | None) -> int:
    """Tokens kept free for the answer: its max tokens, else a quarter of the window (≤ 4k)."""
    return max_tokens or min(4096, context_window(model) // 4)


CJK = re.compile(
    "[\u2e80-\u2fff\u3000-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
MESSAGE_OVERHEAD = 8  # role markers and separators, per message


def estimate_tokens(text: str) -> int:
    """A conservative local estimate: a token is ~1.5 CJK characters or
    ~3 other characters. Kimi's tokenizer is not published; erring high keeps requests in."""
    cjk = len(CJK.findall(text))
    return math.ceil(cjk / 1.5 + (len(text) - cjk) / 3) + MESSAGE_OVERHEAD


# Thinking: Kimi says which models think (supports_reasoning); without it, today's models do.
# Which of them can be told not to is known by name only: kimi-k2.6 (and the retired k2.5)
# think unless the request turns it off; kimi-k3 always does.
ALWAYS_THINKS = ("kimi-k3", "kimi-k2-thinking")
MAY_THINK = ("kimi-k2.6", "kimi-k2.5")
# Models that take `reasoning_effort` (low/high/max, Kimi's default max) and fix their
# sampling: temperature 1, top_p 0.95, n 1 (any other value is refused).
TAKES_EFFORT = ("kimi-k3",)


def thinking(model: str) -> str:
    """ "always", "optional" (on unless the request says `thinking: disabled`) or "never"."""
    described = kimi_says(model)
    thinks = described.reasoning if described is not None else None
    if thinks is None:
        thinks = model.startswith(ALWAYS_THINKS + MAY_THINK)
    if not thinks:
        return "never"
    return "optional" if model.startswith(MAY_THINK) else "always"


def takes_effort(model: str) -> bool:
    return model.startswith(TAKES_EFFORT)


def fixed_sampling(model: str) -> bool:
    """Kimi refuses a temperature, top_p or n of the request's own for these."""
    return model.startswith(MAY_THINK + TAKES_EFFORT)


# The models offered, as read from Kimi.


@dataclass(frozen=True)
class _Read:
    models: dict[str, kimi.ModelInfo]  # by id, in Kimi's order
    at: float  # time.time()


# Replaced whole, never changed in place: the database thread reads it while the event loop
# writes it.
_read: _Read | None = None


def remember(models: list[kimi.ModelInfo]) -> None:
    """Kimi's models, as just read: from now on they are the ones offered and described."""
    global _read
    before = _read
    _read = _Read({m.id: m for m in models}, time.time())
    if before is None or list(before.models) != list(_read.models):
        _say_what_is_offered(_read)


def forget() -> None:
    """Back to the built-in list, as if Kimi had never been read (tests)."""
    global _read, _reader
    _read = None
    _reader = None


def kimi_says(model: str) -> kimi.ModelInfo | None:
    """What Kimi said of `model` when last read; None where it was not read or not listed."""
    read = _read
    return read.models.get(model) if read is not None else None


def read_at() -> float | None:
    """When Kimi's models were last read (time.time()); None for never."""
    read = _read
    return read.at if read is not None else None


def offered() -> list[str]:
    """The models offered in the picker: Kimi's, narrowed to KIMI_MODELS where that is given;
    KIMI_MODELS (or the built-in list) while Kimi has not been read."""
    read = _read
    if read is None:
        return list(settings.KIMI_MODELS)
    if not settings.KIMI_MODELS_FILTER:
        return list(read.models)
    # None of KIMI_MODELS offered by Kimi (a warning said so): the operator's list stands,
    # and Kimi answers for itself.
    return [m for m in settings.KIMI_MODELS if m in read.models] or list(settings.KIMI_MODELS)


def is_offered(model: str) -> bool:
    return model in offered()


def default_model() -> str:
    """KIMI_DEFAULT_MODEL where it is offered, else the first model offered."""
    models = offered()
    return settings.KIMI_DEFAULT_MODEL if settings.KIMI_DEFAULT_MODEL in models else models[0]


def _say_what_is_offered(read: _Read) -> None:
    """Log the list when it changes, and what the settings name that Kimi does not offer."""
    models = offered()
    log.info("Models offered: %s", ", ".join(models))
    if settings.KIMI_MODELS_FILTER:
        missing = [m for m in settings.KIMI_MODELS if m not in read.models]
        if missing:
            log.warning("KIMI_MODELS names models Kimi does not offer: %s", ", ".join(missing))
    if settings.KIMI_DEFAULT_MODEL not in models:
        log.warning(
            "KIMI_DEFAULT_MODEL %s is not offered; new chats start with %s",
            settings.KIMI_DEFAULT_MODEL,
            models[0],
        )


# Reading Kimi's models in the background.


async def refresh() -> bool:
    """Read Kimi's models now; True when they were read. Where Kimi cannot be reached, what
    was read before (or KIMI_MODELS) stays offered."""
    if not kimi.is_configured():
        return False
    try:
        models = await kimi.models()
    except (openai.APIError, TimeoutError) as e:
        code, detail = kimi.error_code(e) if isinstance(e, openai.APIError) else ("timeout", "")
        log.warning(
            "Kimi's models could not be read (%s%s); %s",
            code,
            f": {detail}" if detail else "",
            "the list read before stays" if _read else "KIMI_MODELS is offered",
        )
        return False
    if not models:
        log.warning("Kimi listed no models; the list offered stays")
        return False
    remember(models)
    return True


RETRY_UNREAD = 60.0  # seconds before asking again after Kimi's models could not be read


class _Reader:
    """Reads Kimi's models on one event loop now, and again every KIMI_MODELS_REFRESH s."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tried = asyncio.Event()  # set once the first reading has succeeded or failed
        self.task = loop.create_task(self._run(), name="kimi-models")

    async def _run(self) -> None:
        while settings.KIMI_MODELS_REFRESH:
            try:
                read = await refresh()
            except Exception:
                # Whatever went wrong, the picker keeps its list and the next turn tries again.
                log.exception("Reading Kimi's models failed")
                read = False
            self.tried.set()
            interval = settings.KIMI_MODELS_REFRESH
            await asyncio.sleep(interval if read else min(interval, RETRY_UNREAD))
        self.tried.set()


_reader: _Reader | None = None


def keep_fresh() -> None:
    """Start reading Kimi's models in the background on this event loop, unless that is under
    way already (cheap: the ASGI application calls it for every connection). Each process
    reads its own."""
    global _reader
    if not settings.KIMI_MODELS_REFRESH:
        return
    loop = asyncio.get_running_loop()
    reader = _reader
    if reader is None or reader.task.done() or reader.task.get_loop() is not loop:
        _reader = _Reader(loop)


async def tried() -> None:
    """Wait until this process has first tried to read Kimi's models (at once where it is
    not reading them)."""
    reader = _reader
    if reader is not None:
        await reader.tried.wait()
