"""POST /v1/responses, the Responses API over Kimi's chat completions, driven by the real
openai SDK: text and images in, instructions, reasoning summaries, streamed events, function
tools and their results, and responses continued by id where calls are kept."""

import json

import openai
import pytest

from accounts.models import Usage
from api.models import ApiCall
from conversations.models import Conversation
from tests.helpers.api import _short_lived_connections, abandon, closed_with, sdk
from tests.helpers.kimi_stub import Script

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["_short_lived_connections"]  # autouse: the server's connections close with it

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_a_response_not_streamed_with_instructions_and_an_image(api_server, kimi, alice, alice_key):
    kimi.script = Script(title="A red pixel.")
    response = sdk(api_server, alice_key).responses.create(
        model="kimi-k3",
        instructions="Be brief.",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PIXEL},
                ],
            }
        ],
    )
    assert response.output_text == "A red pixel."
    assert response.status == "completed" and response.id.startswith("resp_")
    sent = kimi.requests[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["content"][1] == {"type": "image_url", "image_url": {"url": PIXEL}}
    row = Usage.objects.get(user=alice)
    assert response.usage.input_tokens == row.prompt_tokens > 0
    assert response.usage.output_tokens == row.completion_tokens == 3
    assert response.usage.total_tokens == row.prompt_tokens + row.completion_tokens
    assert ApiCall.objects.get().response_id == response.id


def test_a_streamed_response_tells_its_events_reasoning_and_usage(
    api_server, kimi, alice, alice_key
):
    with sdk(api_server, alice_key).responses.stream(model="kimi-k3", input="Hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    words = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(words) == "Hello from the Kimi stub."
    thoughts = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert "".join(thoughts) == "Let me think about it."
    assert final.output_text == "Hello from the Kimi stub."
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == "Let me think about it."
    row = Usage.objects.get(user=alice)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        row.prompt_tokens,
        row.completion_tokens,
    )
    assert final.usage.output_tokens_details.reasoning_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_function_tool_is_called_and_its_result_answered(api_server, kimi, alice_key, stream):
    kimi.script = Script(function_calls=[("get_weather", '{"city": "Paris"}')])
    client = sdk(api_server, alice_key)
    question = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.responses.stream(model="kimi-k3", input=question, tools=[WEATHER]) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(model="kimi-k3", input=question, tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert kimi.requests[-1].body["tools"][0]["function"]["name"] == "get_weather"
    # The follow-up sends everything back (as the SDK's agents do), the result last.
    follow = [
        *question,
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 °C"},
    ]
    second = client.responses.create(model="kimi-k3", input=follow, tools=[WEATHER])
    assert second.output_text == "A stub title"
    sent = kimi.requests[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == calls[0].call_id
    # A thinking model's reasoning goes back with its tool call, as Kimi requires.
    assert sent[-2]["reasoning_content"] == "Let me think about it."
    assert sent[-1] == {
        "role": "tool",
        "tool_call_id": calls[0].call_id,
        "content": "Sunny, 21 °C",
    }


def test_a_kept_response_is_continued_by_its_id(api_server, kimi, alice, alice_key, settings):
    settings.API_KEEP_CONVERSATIONS = True
    kimi.script = Script(function_calls=[("get_weather", '{"city": "Paris"}')])
    client = sdk(api_server, alice_key)
    first = client.responses.create(model="kimi-k2.6", input="Weather in Paris?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model="kimi-k2.6",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "A stub title"
    sent = kimi.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    # Kept like the conversations of chat completions: the user sees them.
    assert Conversation.objects.filter(owner=alice, from_api=True).count() == 2


def test_a_response_id_is_not_continued_where_nothing_is_kept_or_by_another_key(
    api_server, kimi, alice_key, bob, settings
):
    client = sdk(api_server, alice_key)
    first = client.responses.create(model="kimi-k2.6", input="Hello")
    with pytest.raises(openai.BadRequestError, match="API_KEEP_CONVERSATIONS"):
        client.responses.create(model="kimi-k2.6", previous_response_id=first.id, input="Hi")
    settings.API_KEEP_CONVERSATIONS = True
    kept = client.responses.create(model="kimi-k2.6", input="Hello")
    from api import services

    bobs = sdk(api_server, services.key_create(user=bob, name="bob")[1])
    with pytest.raises(openai.BadRequestError, match="No response"):
        bobs.responses.create(model="kimi-k2.6", previous_response_id=kept.id, input="Hi")
    assert len(kimi.requests) == 2


def test_tools_other_than_functions_are_refused_in_openais_shape(api_server, kimi, alice_key):
    with pytest.raises(openai.BadRequestError, match="Only function tools"):
        sdk(api_server, alice_key).responses.create(
            model="kimi-k2.6", input="Hi", tools=[{"type": "web_search_preview"}]
        )
    assert kimi.requests == [] and not ApiCall.objects.exists()


@pytest.mark.parametrize("stream", [False], ids=["whole"])
def test_an_abandoned_response_is_closed_and_counted(api_server, kimi, alice, alice_key, stream):
    kimi.script = Script(stall_after=1)
    body = {"model": "kimi-k2.6", "input": "Hello", "stream": stream}
    abandon(api_server, alice_key, "/v1/responses", body, kimi)
    kimi.wait_for(lambda: kimi.requests[0].closed_early)
    call = closed_with(499)
    assert call.response_id and call.prompt_tokens > 0
    assert Usage.objects.get(user=alice).prompt_tokens == call.prompt_tokens
