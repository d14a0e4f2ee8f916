"""The `llm` command line, with KimiChat as an OpenAI-compatible model of its own."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

home = Path(tempfile.mkdtemp())
(home / "extra-openai-models.yaml").write_text(
    f"- model_id: kimichat\n  model_name: {os.environ['MODEL']}\n"
    f'  api_base: "{os.environ["BASE_URL"]}"\n  api_key_name: kimichat\n'
)
(home / "keys.json").write_text(json.dumps({"kimichat": os.environ["API_KEY"]}))
env = {**os.environ, "LLM_USER_PATH": str(home)}


def llm(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "llm", *args], env=env, capture_output=True, text=True, check=True
    ).stdout


text = llm("-m", "kimichat", "Hello Kimi")
logged = json.loads(llm("logs", "--json", "-n", "1"))[0]
print(
    json.dumps(
        {
            "text": text.strip(),
            "prompt": logged["input_tokens"],
            "completion": logged["output_tokens"],
            "total": logged["input_tokens"] + logged["output_tokens"],
        }
    )
)
