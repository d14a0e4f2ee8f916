"""Sign-ups at the same moment on one invitation link, against a real server process (its
requests on threads of their own, its database a SQLite file, or PostgreSQL where
DATABASE_URL names one): one account is made, the others are refused."""

import re
import subprocess
import sys
import threading

import requests

from tests.e2e.cluster import database
from tests.e2e.conftest import ROOT, _daphne, _prepare

PEOPLE = 6
# An invitation to a team of alice's, made as her team page makes one; its token printed.
SETUP = """
from django.contrib.auth.models import User
from teams import services
team = services.team_create(user=User.objects.get(username="alice"), name="Pump Crew")
print(services.invite_create(team=team, actor=team.memberships.get().user).token)
"""
COUNT = """
from django.contrib.auth.models import User
from teams.models import Invite
used = Invite.objects.get().used_by
print(User.objects.filter(username__startswith="guest").count(), used and used.username,
      used and used.memberships.count())
"""


def _manage(env: dict, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_sign_ups_at_once_on_one_link_make_one_account(tmp_path, kimi_stub):
    with database(tmp_path) as url:
        env = _prepare(tmp_path, kimi_stub, DATABASE_URL=url, SIGNUP="invite")
        token = _manage(env, SETUP)
        with _daphne(env, tmp_path / "daphne.log") as base:
            # Each person opened the link (still unused) and has the sign-up form.
            people = []
            for _ in range(PEOPLE):
                browser = requests.Session()
                form = browser.get(f"{base}/invite/{token}/").text
                assert "Sign up to accept" in form
                csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
                people.append((browser, csrf))
            start = threading.Barrier(PEOPLE)
            answers: list[str] = []

            def press_sign_up(n: int) -> None:
                browser, csrf = people[n]
                start.wait()
                answer = browser.post(
                    f"{base}/accounts/signup/",
                    {
                        "csrfmiddlewaretoken": csrf,
                        "username": f"guest{n}",
                        "password1": "a-long-passphrase-9",
                        "password2": "a-long-passphrase-9",
                    },
                    headers={"Referer": f"{base}/accounts/signup/"},
                    timeout=60,
                )
                answers.append(answer.text)

            threads = [threading.Thread(target=press_sign_up, args=(n,)) for n in range(PEOPLE)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        made, used_by, teams = _manage(env, COUNT).split()
    # One account, the invitation's, in the team; everyone else told the link is spent.
    assert made == "1" and used_by.startswith("guest") and teams == "1"
    refused = [a for a in answers if "This invitation does not work" in a]
    assert len(answers) == PEOPLE and len(refused) == PEOPLE - 1
