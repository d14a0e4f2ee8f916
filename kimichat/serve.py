"""`python -m kimichat.serve`: Daphne on HOST:PORT (what `make run` starts).

It only serves: `manage.py migrate` and `manage.py repair` run before it (`make run` does both).
"""

import gc
import os
import sys

import django

LISTEN_BACKLOG = 1024


def main() -> None:
    # The event loop shares the GIL with the database thread; switching more often keeps
    # token latency low while that thread saves messages.
    sys.setswitchinterval(float(os.environ.get("KIMICHAT_SWITCH_INTERVAL", "0.001")))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    django.setup()
    from django.conf import settings

    from realtime.server import CommandLineInterface

    # What is loaded by now (Django, the apps, their modules) lives as long as the process:
    # kept out of the collector's full sweeps, which otherwise paused every stream for up to
    # 170 ms at 200 at once; and fewer young collections under a burst (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)

    if not settings.MOONSHOT_API_KEY:
        print("Warning: MOONSHOT_API_KEY is not set; answers will fail until it is configured.")
    print(f"KimiChat on http://{settings.HOST}:{settings.PORT}/")
    # As Daphne's -b/-p, with a longer listen queue: Twisted's default (50) overflows when
    # hundreds of pages reconnect at once (a restart behind nginx, which then answers 502).
    interface = settings.HOST.strip("[]").replace(":", r"\:")
    args = [
        "-e",
        f"tcp:port={settings.PORT}:interface={interface}:backlog={LISTEN_BACKLOG}",
        *sys.argv[1:],
        "kimichat.asgi:application",
    ]
    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
