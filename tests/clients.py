"""Client libraries that nobody here wrote, each installed in a virtualenv (or, for
openai-node, a node_modules folder) of its own under .clients/, made by the first test run
that needs it and kept for the next (the folder is ignored by git; delete it to start over).

    python -m tests.clients           # install them all now (CI does it on the first run)
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / ".clients"

# What each library's virtualenv gets: pinned, so a new release breaks nothing unannounced.
PYTHON_CLIENTS = {
    "langchain": ["langchain-openai==1.8.1"],
    "litellm": ["litellm==1.110.2"],
    "llm": ["llm==0.36"],
    "pydantic-ai": ["pydantic-ai-slim[openai]==2.78.0"],
    "instructor": ["instructor==1.17.0"],
    "agents": ["openai-agents==0.24.0"],
}
NODE_CLIENTS = {"openai-node": ["openai@7.60.0"]}


def _fingerprint(packages: list[str]) -> str:
    return hashlib.sha256("\n".join(packages).encode()).hexdigest()[:16]


def _ready(folder: Path, packages: list[str]) -> bool:
    marker = folder / ".installed"
    return marker.exists() and marker.read_text() == _fingerprint(packages)


def _install(command: list[str], folder: Path, name: str) -> None:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        output = result.stdout[-3000:] + result.stderr[-3000:]
        unreachable = any(
            words in output
            for words in (
                "Could not find a version",
                "Failed to establish",
                "ENOTFOUND",
                "EAI_AGAIN",
                "ECONNREFUSED",
                "No matching distribution",
                "ETIMEDOUT",
            )
        )
        if unreachable and not os.environ.get("CI"):
            pytest.skip(f"{name}: the package registry is unreachable here")
        raise RuntimeError(f"installing {name} failed:\n{output}")
    print(f"{name} installed in {time.monotonic() - started:.0f} s", file=sys.stderr)


@contextlib.contextmanager
def _alone(name: str):
    """One process at a time checks and installs `name` (the suite may run in several)."""
    ROOT.mkdir(exist_ok=True)
    with open(ROOT / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def python_client(name: str) -> Path:
    """The python of `name`'s virtualenv, made (and its packages installed) when missing."""
    packages = PYTHON_CLIENTS[name]
    folder = ROOT / name
    python = folder / "bin" / "python"
    with _alone(name):
        if _ready(folder, packages):
            return python
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        _install(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
            folder,
            name,
        )
        (folder / ".installed").write_text(_fingerprint(packages))
    return python


def node_client(name: str) -> Path:
    """The folder whose node_modules hold `name`, installed from the npm registry when missing."""
    packages = NODE_CLIENTS[name]
    folder = ROOT / name
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            raise RuntimeError("node and npm are needed for the openai-node tests")
        pytest.skip("node and npm are not installed here")
    with _alone(name):
        if _ready(folder, packages):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "package.json").write_text('{"private": true}\n')
        _install(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(folder),
                *packages,
            ],
            folder,
            name,
        )
        (folder / ".installed").write_text(_fingerprint(packages))
    return folder


if __name__ == "__main__":
    # All at once: the installs wait on the network more than on the processor.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(PYTHON_CLIENTS) + len(NODE_CLIENTS)) as pool:
        done = [pool.submit(python_client, name) for name in PYTHON_CLIENTS]
        done += [pool.submit(node_client, name) for name in NODE_CLIENTS]
        for each in done:
            each.result()
