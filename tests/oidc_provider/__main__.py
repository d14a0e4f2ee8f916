"""Serve the provider: `python -m tests.oidc_provider PORT SETUP_JSON` (with OIDC_PROVIDER_DB
and OIDC_PROVIDER_KEY set); prints "ready" once it listens."""

import json
import os
import sys

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIServer, get_internal_wsgi_application, run
    from oauth2_provider.models import Application

    port, setup = int(sys.argv[1]), json.loads(sys.argv[2])
    call_command("migrate", verbosity=0)
    for person in setup["users"]:
        user = User.objects.create_user(person["username"], person["email"], person["password"])
        for name in person.get("groups", []):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    Application.objects.create(
        name="KimiChat",
        client_id=setup["client_id"],
        client_secret=setup["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(setup["redirect_uris"]),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )

    class Server(WSGIServer):
        def server_activate(self):
            super().server_activate()
            print("ready", flush=True)

    run("127.0.0.1", port, get_internal_wsgi_application(), threading=True, server_cls=Server)


if __name__ == "__main__":
    main()
