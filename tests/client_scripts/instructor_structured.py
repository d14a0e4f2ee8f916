import json
import os

import instructor
import openai
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int


client = instructor.from_openai(
    openai.OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0),
    mode=instructor.Mode.JSON,
)
person, completion = client.chat.completions.create_with_completion(
    model=os.environ["MODEL"],
    response_model=Person,
    messages=[{"role": "user", "content": "Ada Lovelace, 36"}],
    max_retries=0,
)
usage = completion.usage
print(
    json.dumps(
        {
            "text": person.model_dump_json(),
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "total": usage.total_tokens,
        }
    )
)
