"""The OpenAI Agents SDK: an agent with a function tool, over the Responses API."""

import asyncio
import json
import os

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

set_tracing_disabled(True)
client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


async def main() -> None:
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=OpenAIResponsesModel(model=os.environ["MODEL"], openai_client=client),
        tools=[get_weather],
    )
    result = await Runner.run(agent, "Weather in Paris?")
    usage = result.context_wrapper.usage
    print(
        json.dumps(
            {
                "text": result.final_output,
                "requests": usage.requests,
                "prompt": usage.input_tokens,
                "completion": usage.output_tokens,
                "total": usage.total_tokens,
            }
        )
    )


asyncio.run(main())
