import json
import os

import litellm

chunks = list(
    litellm.completion(
        model="openai/" + os.environ["MODEL"],
        api_base=os.environ["BASE_URL"],
        api_key=os.environ["API_KEY"],
        messages=[{"role": "user", "content": "Hello Kimi"}],
        stream=True,
        stream_options={"include_usage": True},
        num_retries=0,
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
usage = litellm.stream_chunk_builder(chunks).usage
print(
    json.dumps(
        {
            "text": text,
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "total": usage.total_tokens,
        }
    )
)
