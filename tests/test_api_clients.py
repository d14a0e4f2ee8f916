"""Client libraries nobody here wrote, each in its own virtualenv (tests/clients.py), driven
against the running server and the Kimi stub: the answer arrives and the tokens each library
reports are those KimiChat counted."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db.models import Sum

from accounts.models import Usage
from api.models import ApiCall
from tests import clients
from tests.helpers.api import _short_lived_connections
from tests.helpers.kimi_stub import Script

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["_short_lived_connections"]  # autouse: the server's connections close with it

SCRIPTS = Path(__file__).parent / "client_scripts"
STUB_ANSWER = "Hello from the Kimi stub."


def run(command: list[str], api_server: str, key: str, model: str, cwd: Path | None = None):
    env = {
        **os.environ,
        "BASE_URL": api_server + "/v1",
        "API_KEY": key,
        "MODEL": model,
        # No library may reach anything but the server under test.
        "OPENAI_API_KEY": key,
        "NO_PROXY": "127.0.0.1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def python(name: str, script: str, api_server: str, key: str, model: str = "kimi-k2.6"):
    return run([str(clients.python_client(name)), str(SCRIPTS / script)], api_server, key, model)


def counted(user) -> tuple[int, int]:
    totals = Usage.objects.filter(user=user).aggregate(
        p=Sum("prompt_tokens"), c=Sum("completion_tokens")
    )
    return totals["p"] or 0, totals["c"] or 0


def assert_tokens_match(said: dict, user) -> None:
    prompt, completion = counted(user)
    assert (said["prompt"], said["completion"]) == (prompt, completion)
    assert said["total"] == prompt + completion and completion > 0


def test_langchain_openai_streams_with_its_usage(api_server, kimi, alice, alice_key):
    said = python("langchain", "langchain_chat.py", api_server, alice_key)
    assert said["text"] == STUB_ANSWER
    assert_tokens_match(said, alice)


def test_litellm_streams_with_kimichats_usage_not_its_estimate(api_server, kimi, alice, alice_key):
    said = python("litellm", "litellm_chat.py", api_server, alice_key)
    assert said["text"] == STUB_ANSWER
    assert_tokens_match(said, alice)


def test_the_llm_command_logs_the_tokens(api_server, kimi, alice, alice_key):
    said = python("llm", "llm_cli.py", api_server, alice_key)
    assert said["text"] == STUB_ANSWER
    assert_tokens_match(said, alice)


def test_instructor_gets_structured_output_and_its_usage(api_server, kimi, alice, alice_key):
    kimi.script = Script(title='{"name": "Ada Lovelace", "age": 36}')
    said = python("instructor", "instructor_structured.py", api_server, alice_key)
    assert json.loads(said["text"]) == {"name": "Ada Lovelace", "age": 36}
    assert_tokens_match(said, alice)


def test_pydantic_ai_streams_and_runs_an_agent_over_the_responses_api(
    api_server, kimi, alice, alice_key
):
    kimi.script = Script(function_calls=[("get_weather", '{"city": "Paris"}')])
    said = python("pydantic-ai", "pydantic_ai_agents.py", api_server, alice_key)
    assert said["text"] == STUB_ANSWER
    assert said["agent_text"] == "A stub title" and said["agent_requests"] == 2
    calls = list(ApiCall.objects.order_by("id"))
    assert [bool(c.response_id) for c in calls] == [False, True, True]
    first, *agent = calls
    assert (said["prompt"], said["completion"]) == (first.prompt_tokens, first.completion_tokens)
    assert said["agent_prompt"] == sum(c.prompt_tokens for c in agent)
    assert said["agent_completion"] == sum(c.completion_tokens for c in agent)
    assert kimi.requests[-1].body["messages"][-1]["content"] == "Sunny in Paris"


def test_the_openai_agents_sdk_runs_a_tool_over_the_responses_api(
    api_server, kimi, alice, alice_key
):
    kimi.script = Script(function_calls=[("get_weather", '{"city": "Paris"}')])
    said = python("agents", "agents_runner.py", api_server, alice_key)
    assert said["text"] == "A stub title" and said["requests"] == 2
    assert kimi.requests[-1].body["messages"][-1]["content"] == "Sunny in Paris"
    assert_tokens_match(said, alice)


def test_openai_node_streams_with_its_final_usage_and_makes_a_response(
    api_server, kimi, alice, alice_key
):
    folder = clients.node_client("openai-node")
    shutil.copy(SCRIPTS / "openai_node.mjs", folder / "run.mjs")
    said = run(["node", "run.mjs"], api_server, alice_key, "kimi-k2.6", cwd=folder)
    assert said["text"] == STUB_ANSWER and said["response_text"] == "A stub title"
    chat, response = ApiCall.objects.order_by("id")
    assert (said["prompt"], said["completion"]) == (chat.prompt_tokens, chat.completion_tokens)
    assert said["total"] == chat.prompt_tokens + chat.completion_tokens
    assert (said["response_prompt"], said["response_completion"]) == (
        response.prompt_tokens,
        response.completion_tokens,
    )
