"""What KimiChat knows of Kimi's models without asking: context windows, which models see
images, room kept for the answer, and a local token estimate (kimi-api.md §1, §6, §7)."""

import math
import re

from django.conf import settings

# Context windows in tokens (kimi-api.md). moonshot-v1-auto routes to 8k/32k/128k by size.
CONTEXT_WINDOWS = {
    "moonshot-v1-8k": 8192,
    "moonshot-v1-32k": 32768,
    "moonshot-v1-128k": 131072,
    "moonshot-v1-auto": 131072,
    "kimi-k2-0711-preview": 131072,
    "kimi-latest": 131072,
    "kimi-k3": 1048576,
}
AUTO_MODEL = "moonshot-v1-auto"
AUTO_TIERS = [("moonshot-v1-8k", 8192), ("moonshot-v1-32k", 32768), ("moonshot-v1-128k", 131072)]


def context_window(model: str) -> int:
    if model in settings.KIMI_CONTEXT_WINDOWS:
        return settings.KIMI_CONTEXT_WINDOWS[model]
    if model in CONTEXT_WINDOWS:
        return CONTEXT_WINDOWS[model]
    for suffix, window in (("-8k", 8192), ("-32k", 32768), ("-128k", 131072)):
        if suffix + "-" in model + "-":
            return window
    if model.startswith(("kimi-k2", "kimi-k3")):
        return 262144
    return 131072


IMAGE_TOKENS = 1024  # what Kimi's help centre gives for one image (kimi-api.md §6)

# Models that take images in a message (kimi-api.md §1, §6).
VISION_PREFIXES = ("kimi-k2.5", "kimi-k2.6", "kimi-k3", "kimi-latest", "kimi-thinking-preview")


def accepts_images(model: str) -> bool:
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
    """A conservative local estimate (kimi-api.md §7): a token is ~1.5 CJK characters or
    ~3 other characters. Kimi's tokenizer is not published; erring high keeps requests in."""
    cjk = len(CJK.findall(text))
    return math.ceil(cjk / 1.5 + (len(text) - cjk) / 3) + MESSAGE_OVERHEAD


# Thinking (kimi-api.md §2): the k2 thinking models always think; k2.5 and k2.6 think unless the
# request turns it off; moonshot-v1 and the other k2 models never do.
ALWAYS_THINKS = ("kimi-k2-thinking", "kimi-thinking-preview")
MAY_THINK = ("kimi-k2.5", "kimi-k2.6")


def thinking(model: str) -> str:
    """"always", "optional" (on unless the request says `thinking: disabled`) or "never"."""
    if model.startswith(ALWAYS_THINKS):
        return "always"
    if model.startswith(MAY_THINK):
        return "optional"
    return "never"


def fixed_sampling(model: str) -> bool:
    """Kimi refuses a temperature or top_p of the request's own for these (kimi-api.md §2)."""
    return model.startswith(MAY_THINK)
