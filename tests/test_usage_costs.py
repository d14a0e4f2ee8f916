"""The admin's Usage page: the share of prompts Kimi served from its cache and the estimated
cost per model, from prices the operator sets, with the last 30 days drawn as an SVG chart."""

import datetime
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import Usage

USAGE = "/admin/accounts/usage/"


@pytest.fixture
def admin_client(db, settings) -> Client:
    settings.MOONSHOT_API_KEY = ""  # no balance to ask for
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="password"))
    return client


def add(user, model, days_ago=0, **counts) -> None:
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    Usage.objects.create(user=user, model=model, day=day, **counts)


def row(page: str, model: str) -> list[str]:
    found = re.search(rf"<th scope=\"row\">{model}</th>(.*?)</tr>", page, re.S)
    assert found, f"a row for {model}"
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td>(.*?)</td>", found[1], re.S)]


def test_the_usage_page_shows_the_cache_share_and_the_estimated_cost_per_model(admin_client, alice):
    counts = {"messages": 10, "prompt_tokens": 1_000_000, "cached_tokens": 900_000}
    add(alice, "kimi-k3", completion_tokens=5000, searches=4, **counts)
    add(alice, "kimi-k2.6", messages=1, prompt_tokens=100, completion_tokens=10)
    page = admin_client.get(USAGE).content.decode()
    # 90% from the cache: 100k at $3 + 900k at $0.30 = $0.57 of input, against $3 with none;
    # four searches at $0.005; output unpriced by default.
    assert row(page, "kimi-k3") == [
        "10",
        "1000000",
        "90%",
        "5000",
        "4",
        "$0.5700 ($3.0000)",
        "$0.5900",
    ]
    assert row(page, "kimi-k2.6")[-2:] == ["—", "—"]  # no price set for it
    # The last 30 days drawn, one line per model.
    assert page.count("<polyline") == 4  # tokens and cost, for each of the two models
    assert 'role="img"' in page


def test_an_operator_sets_the_prices(admin_client, alice, settings):
    settings.KIMI_PRICES = {"kimi-k2.6": (1.0, 0.1, 4.0)}
    add(alice, "kimi-k2.6", messages=1, prompt_tokens=2_000_000, completion_tokens=1_000_000)
    page = admin_client.get(USAGE).content.decode()
    assert row(page, "kimi-k2.6")[-1] == "$6.0000"  # 2M in at $1, 1M out at $4
    assert row(page, "kimi-k2.6")[2] == "0%"


def test_the_chart_shows_only_the_last_30_days(admin_client, alice):
    add(alice, "kimi-k3", days_ago=40, messages=1, prompt_tokens=5, completion_tokens=5)
    add(alice, "kimi-k3", days_ago=3, messages=1, prompt_tokens=50, completion_tokens=50)
    page = admin_client.get(USAGE).content.decode()
    points = re.search(r'<polyline[^>]*points="([^"]*)"', page)[1].split()
    assert len(points) == 30
    heights = [float(p.split(",")[1]) for p in points]
    assert heights[-4] == 0.0 and heights.count(0.0) == 1  # the top, 3 days ago; the rest 0
