"""`python -m bench.seed N`: migrate, then N users, each with a session and a conversation.
Prints the cookies and conversation ids as JSON."""

import json
import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from conversations.models import Conversation

    call_command("migrate", verbosity=0)
    count = int(sys.argv[1])
    users = User.objects.bulk_create(User(username=f"bench{i}") for i in range(count))
    # The first may use the admin too (the README's screenshots of moderation).
    User.objects.filter(pk=users[0].pk).update(is_staff=True, is_superuser=True)
    cookies, conversations = [], []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"sessionid={session.session_key}")
        conversations.append(
            Conversation.objects.create(
                owner=user, model=os.environ.get("BENCH_MODEL", "kimi-k2.6")
            ).pk
        )
    print(json.dumps({"cookies": cookies, "conversations": conversations}))


if __name__ == "__main__":
    main()
