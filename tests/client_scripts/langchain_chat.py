import json
import os

from langchain_openai import ChatOpenAI

chat = ChatOpenAI(
    model=os.environ["MODEL"],
    base_url=os.environ["BASE_URL"],
    api_key=os.environ["API_KEY"],
    max_retries=0,
    stream_usage=True,
)
whole = None
for chunk in chat.stream("Hello Kimi"):
    whole = chunk if whole is None else whole + chunk
usage = whole.usage_metadata
print(
    json.dumps(
        {
            "text": whole.content,
            "prompt": usage["input_tokens"],
            "completion": usage["output_tokens"],
            "total": usage["total_tokens"],
        }
    )
)
