"""`python -m kimichat.serve`: Daphne on HOST:PORT (what `make run` starts).

It only serves: `manage.py migrate` and `manage.py repair` run before it (`make run` does both).
"""

import os
import sys

import django


def main() -> None:
    # The event loop shares the GIL with the database thread; switching more often keeps
    # token latency low while that thread saves messages.
    sys.setswitchinterval(float(os.environ.get("KIMICHAT_SWITCH_INTERVAL", "0.001")))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    django.setup()
    from daphne.cli import CommandLineInterface
    from django.conf import settings

    if not settings.MOONSHOT_API_KEY:
        print("Warning: MOONSHOT_API_KEY is not set; answers will fail until it is configured.")
    print(f"KimiChat on http://{settings.HOST}:{settings.PORT}/")
    args = [
        "-b",
        settings.HOST,
        "-p",
        str(settings.PORT),
        *sys.argv[1:],
        "kimichat.asgi:application",
    ]
    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
