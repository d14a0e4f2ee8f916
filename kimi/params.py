"""What a request to Kimi carries beyond its messages, from a conversation's settings and what
the catalogue knows of the model: sampling, thinking, effort, the cache key (docs/how-it-works.md,
"Kimi today"). Tools are added by the answer's rounds (kimi/tools.py)."""

from typing import Any

from kimi import catalogue

DISABLED = {"thinking": {"type": "disabled"}}


def request_params(conversation: Any, model: str) -> dict[str, Any]:
    """Request parameters for `model` from a conversation's settings: sampling (unset ones
    keep the model's default; none for models that fix them), the effort for models that
    take one, thinking turned off where asked (models that may think or not), and the
    conversation's cache key, so that its turns land where its earlier ones are cached."""
    params: dict[str, Any] = {}
    if not catalogue.fixed_sampling(model):
        if conversation.temperature is not None:
            params["temperature"] = conversation.temperature
        if conversation.top_p is not None:
            params["top_p"] = conversation.top_p
    if catalogue.takes_effort(model) and conversation.reasoning_effort:
        params["reasoning_effort"] = conversation.reasoning_effort
    if conversation.max_tokens:
        params["max_completion_tokens"] = conversation.max_tokens
    if conversation.stop:
        params["stop"] = conversation.stop
    if catalogue.thinking(model) == "optional" and not conversation.thinking:
        params["extra_body"] = dict(DISABLED)
    if conversation.pk:
        params["prompt_cache_key"] = cache_key(conversation.pk)
    return params


def cache_key(conversation_id: int) -> str:
    """One key per conversation, stable across its turns (Kimi's `prompt_cache_key`)."""
    return f"kimichat-conversation-{conversation_id}"


def continue_params(conversation: Any, model: str) -> dict[str, Any]:
    """Going on from an answer's words (partial mode): as the answer was asked; the
    thinking so far goes beside the words (parts.partial_reply)."""
    return request_params(conversation, model)


def title_params(model: str) -> dict[str, Any]:
    """A title's request: a few tokens, without thinking where the model may think or not,
    with the least effort where it takes one."""
    if catalogue.thinking(model) == "always":
        params: dict[str, Any] = {"max_completion_tokens": 2048}  # thinking comes out of these
        if catalogue.takes_effort(model):
            params["reasoning_effort"] = "low"
        return params
    params = {"max_completion_tokens": 32}
    if catalogue.thinking(model) == "optional":
        params["extra_body"] = dict(DISABLED)
    return params
