"""What is sent upstream for one answer: the system prompt, then the thread up to the question,
within the model's context window."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from conversations.models import Conversation, Message, Thread
from kimichat import kimi

REPLY_PRIMING = 3  # tokens Kimi adds to start the answer


@dataclass
class Request:
    model: str  # the model to call: moonshot-v1-auto is resolved to 8k, 32k or 128k here
    messages: list[dict]
    trimmed: int  # how many of the oldest messages were left out to fit


class TooLong(Exception):
    """The question (with the system prompt and room for the answer) fits no window."""


def history(*, thread: Thread, until: int | None) -> list[dict]:
    """The thread's messages up to and including `until`, as role/content pairs."""
    if until is None:
        return []
    ids = [*thread.ancestors(until), until]
    rows = (
        Message.objects.filter(id__in=ids)
        .for_context()
        .order_by("id")
        .values_list("role", "content")
    )
    return [{"role": role, "content": content} for role, content in rows]


def fit(*, conversation: Conversation, turns: list[dict]) -> Request:
    """Keep the request and the answer's max tokens within the model's window: the oldest
    turns are left out first; the system prompt and the last turn (the question) always go."""
    system = []
    if conversation.system_prompt.strip():
        system = [{"role": "system", "content": conversation.system_prompt}]
    costs = [kimi.estimate_tokens(m["content"]) for m in system + turns]
    fixed = sum(costs[: len(system)]) + costs[-1] + REPLY_PRIMING
    older = costs[len(system) : -1]

    tiers = _tiers(conversation.model)
    model, window = tiers[-1]
    budget = window - kimi.answer_reserve(model, conversation.max_tokens)
    if fixed > budget:
        raise TooLong(
            _(
                "This message is too long for %(model)s: about %(tokens)s tokens, and the "
                "model takes %(window)s including the answer. Shorten it, or pick a model "
                "with a larger context window."
            )
            % {"model": conversation.model, "tokens": f"{fixed:,}", "window": f"{window:,}"}
        )
    start, total = 0, fixed + sum(older)
    while total > budget:
        total -= older[start]
        start += 1
    # A history starts with a question, never with an answer to a question left out.
    while start < len(older) and turns[start]["role"] == Message.Role.ASSISTANT:
        total -= older[start]
        start += 1
    for model, window in tiers:
        if total + kimi.answer_reserve(model, conversation.max_tokens) <= window:
            break
    return Request(model=model, messages=system + turns[start:], trimmed=start)


def _tiers(model: str) -> list[tuple[str, int]]:
    if model == kimi.AUTO_MODEL:
        return kimi.AUTO_TIERS
    return [(model, kimi.context_window(model))]
