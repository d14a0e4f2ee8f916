"""Reading a file's text in a process of its own, under a memory limit and a CPU-time limit:
a hostile file fails its own reading, never the server, and what the reading took is given
back when the process ends. A process loads no models (a fraction of a second to start);
it is given the settings it needs, and answers in JSON.

`python -m uploads.reader` is the child: a job on stdin, the text (or why not) on stdout."""

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from uploads.errors import ExtractError

# The settings a reading uses, passed to the child (which reads no configuration itself).
SETTINGS = ("UPLOAD_MAX_BYTES", "UPLOAD_MAX_UNPACKED_BYTES", "EXTRACT_MAX_PAGES", "EXTRACT_TIMEOUT")
# Files of one user read at once, per process: one user's many files wait their turn rather
# than take every reader.
PER_USER = 1

_lock = threading.Lock()
_readers: threading.BoundedSemaphore | None = None
_users: dict[int, threading.BoundedSemaphore] = {}


def read(path: str, kind: str, *, owner_id: int) -> Any:
    """The text of a checked file (an `extract.Extracted`), read in a child process; raises
    ExtractError for a file that cannot be read, or that needs more memory or time than a
    reading may take. Waits for a reader to be free."""
    from uploads.extract import Extracted

    with _turn(owner_id):
        job = {
            "path": path,
            "kind": kind,
            "settings": {name: getattr(settings, name) for name in SETTINGS},
            "memory_mb": settings.FILE_READER_MEMORY_MB,
        }
        try:
            done = subprocess.run(
                [sys.executable, "-m", "uploads.reader"],
                input=json.dumps(job).encode(),
                capture_output=True,
                # The child's own CPU limit comes first; this is for a child that waits.
                timeout=settings.EXTRACT_TIMEOUT + 10,
                cwd=settings.BASE_DIR,
            )
        except subprocess.TimeoutExpired as e:
            raise ExtractError("timeout", seconds=f"{settings.EXTRACT_TIMEOUT:g}") from e
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        # Killed: past its CPU time (SIGXCPU, SIGKILL), or its memory where Python could
        # not even say so.
        if done.returncode in (-9, -24):
            raise ExtractError("timeout", seconds=f"{settings.EXTRACT_TIMEOUT:g}")
        raise ExtractError("memory", limit=f"{settings.FILE_READER_MEMORY_MB:,} MB")
    if "error" in answer:
        raise ExtractError(answer["error"], **answer.get("params", {}))
    return Extracted(answer["text"], answer["pages"])


@contextlib.contextmanager
def _turn(owner_id: int) -> Iterator[None]:
    global _readers
    with _lock:
        if _readers is None:
            _readers = threading.BoundedSemaphore(settings.FILE_READERS)
        readers = _readers
        own = _users.setdefault(owner_id, threading.BoundedSemaphore(PER_USER))
    with own, readers:
        yield


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    memory = job["memory_mb"] * 1024 * 1024
    seconds = int(job["settings"]["EXTRACT_TIMEOUT"]) + 1
    # Address space is what Python's allocations meet (RSS would not stop them); this
    # process's own start-up counts towards it, so the limit is on top of that.
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    # Live answers come first: readings take the CPU that is left.
    os.nice(19)
    from django.conf import settings as django_settings

    django_settings.configure(USE_I18N=False, **job["settings"])
    from uploads import extract

    answer: dict[str, Any]
    try:
        extracted = extract.extract(job["path"], job["kind"])
        answer = {"text": extracted.text, "pages": extracted.pages}
    except ExtractError as e:
        answer = {"error": e.code, "params": {k: str(v) for k, v in e.params.items()}}
    except MemoryError:
        answer = {"error": "memory", "params": {"limit": f"{job['memory_mb']:,} MB"}}
    sys.stdout.write(json.dumps(answer))


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    main()
