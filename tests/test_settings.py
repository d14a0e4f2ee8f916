"""Settings come from the environment; a bad value stops the start and names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("KIMI_STREAM_TIMEOUT", "-1"),
        ("DEBUG", "perhaps"),
        ("KIMI_DEFAULT_MODEL", "not-in-the-list"),
        ("TASKS_BACKEND", "celery"),
        ("UPLOAD_MAX_BYTES", "0"),
        ("USER_DAILY_TOKENS", "-5"),
        ("MODERATION_TRANSCRIPTS", "maybe"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(name, value):
    result = start(**{name: value})
    assert result.returncode != 0
    assert f"Bad value for {name}" in result.stderr


def test_good_values_start():
    result = start(PORT="8080", KIMI_MODELS="moonshot-v1-8k", KIMI_DEFAULT_MODEL="moonshot-v1-8k")
    assert result.returncode == 0, result.stderr
