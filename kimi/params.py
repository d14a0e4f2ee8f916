"""What a request to Kimi carries beyond its messages, from a conversation's settings and what
the catalogue knows of the model: sampling, thinking, web search (kimi-api.md §2, §6)."""

from typing import Any

from django.conf import settings

from kimi import catalogue, tools

DISABLED = {"thinking": {"type": "disabled"}}


def request_params(conversation: Any, model: str) -> dict[str, Any]:
    """Request parameters for `model` from a conversation's settings: sampling (unset ones
    keep the model's default; none for models that fix them), web search offered where it is
    on, and thinking turned off where asked (or where web search is on: Kimi's guides never
    combine the two on k2.5/k2.6)."""
    params: dict[str, Any] = {}
    if not catalogue.fixed_sampling(model):
        if conversation.temperature is not None:
            params["temperature"] = conversation.temperature
        if conversation.top_p is not None:
            params["top_p"] = conversation.top_p
    if conversation.max_tokens:
        params["max_completion_tokens"] = conversation.max_tokens
    if conversation.stop:
        params["stop"] = conversation.stop
    searching = conversation.web_search and settings.KIMI_WEB_SEARCH
    if searching:
        params["tools"] = [tools.WEB_SEARCH_TOOL]
    if catalogue.thinking(model) == "optional" and (searching or not conversation.thinking):
        params["extra_body"] = DISABLED
    return params


def continue_params(conversation: Any, model: str) -> dict[str, Any]:
    """Going on from an answer's words (partial mode): it thought before it began, so a model
    that may think or not does not think again."""
    params = request_params(conversation, model)
    if catalogue.thinking(model) == "optional":
        params["extra_body"] = DISABLED
    return params


def title_params(model: str) -> dict[str, Any]:
    """A title's request: a few tokens, without thinking where the model may think or not."""
    if catalogue.thinking(model) == "always":
        return {"max_completion_tokens": 2048}  # its thinking comes out of these too
    params: dict[str, Any] = {"max_completion_tokens": 32}
    if catalogue.thinking(model) == "optional":
        params["extra_body"] = DISABLED
    return params
