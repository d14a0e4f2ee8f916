"""pydantic-ai: a streamed run over chat completions, and an agent with a tool over the
Responses API."""

import asyncio
import json
import os

from pydantic_ai import Agent
from pydantic_ai.models.openai import (
    OpenAIChatModel,
    OpenAIResponsesModel,
    OpenAIResponsesModelSettings,
)
from pydantic_ai.providers.openai import OpenAIProvider

provider = OpenAIProvider(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"])


async def main() -> None:
    chat = Agent(OpenAIChatModel(os.environ["MODEL"], provider=provider))
    async with chat.run_stream("Hello Kimi") as run:
        text = await run.get_output()
    streamed = run.usage()

    # Kimi's thinking models need their reasoning back with a tool call's turn: pydantic-ai
    # sends the reasoning items back only for models it knows reason, or when told to.
    agent = Agent(
        OpenAIResponsesModel(os.environ["MODEL"], provider=provider),
        model_settings=OpenAIResponsesModelSettings(openai_send_reasoning_ids=True),
    )

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    answered = await agent.run("Weather in Paris?")
    used = answered.usage()
    print(
        json.dumps(
            {
                "text": text,
                "prompt": streamed.input_tokens,
                "completion": streamed.output_tokens,
                "total": streamed.input_tokens + streamed.output_tokens,
                "agent_text": answered.output,
                "agent_requests": used.requests,
                "agent_prompt": used.input_tokens,
                "agent_completion": used.output_tokens,
            }
        )
    )


asyncio.run(main())
