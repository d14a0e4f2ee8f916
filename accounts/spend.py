"""What Kimi's usage cost, by estimate, for the admin's Usage page: the share of prompts
served from Kimi's cache, an estimated cost per model from KIMI_PRICES, and the last 30 days'
tokens and cost per model as chart lines (drawn by the page's SVG, no script)."""

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet, Sum

from accounts.models import Usage

CHART_DAYS = 30
WIDTH, HEIGHT = 600, 140  # the chart's drawing area, in SVG units
COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
SUMS = {
    "messages": Sum("messages"),
    "prompt": Sum("prompt_tokens"),
    "cached": Sum("cached_tokens"),
    "completion": Sum("completion_tokens"),
    "searches": Sum("searches"),
}


@dataclass(frozen=True)
class Price:
    input: float  # USD per million uncached input tokens
    cached: float  # per million cached input tokens
    output: float | None  # per million output tokens; None: not known


def price(model: str) -> Price | None:
    """KIMI_PRICES' price for `model` (its id, or the longest id it starts with)."""
    known = [m for m in settings.KIMI_PRICES if model == m or model.startswith(m + "-")]
    if not known:
        return None
    return Price(*settings.KIMI_PRICES[max(known, key=len)])


def cost(model: str, *, prompt: int, cached: int, completion: int, searches: int) -> float | None:
    """Estimated USD, where the model's price is known (output left out where its price is)."""
    p = price(model)
    if p is None:
        return None
    tokens = (prompt - cached) * p.input + cached * p.cached + completion * (p.output or 0)
    return tokens / 1e6 + searches * settings.KIMI_SEARCH_PRICE


def by_model(rows: QuerySet[Usage]) -> list[dict]:
    """Per model: the sums, the share of prompt tokens from the cache, the estimated cost,
    and the input's estimated cost against what it would have been with no cache."""
    found = []
    for row in rows.order_by().values("model").annotate(**SUMS).order_by("model"):
        counts = _counts(row)
        model, prompt = row["model"], counts["prompt"]
        inputs = {"prompt": prompt, "completion": 0, "searches": 0}
        found.append(
            {
                **row,
                "share": counts["cached"] / prompt if prompt else None,
                "cost": cost(model, **counts),
                "input_cost": cost(model, **inputs, cached=counts["cached"]),
                "input_uncached": cost(model, **inputs, cached=0),
            }
        )
    return found


def _counts(row: Any) -> dict[str, int]:
    return {k: row[k] or 0 for k in ("prompt", "cached", "completion", "searches")}


def chart(rows: QuerySet[Usage], today: datetime.date) -> dict:
    """The last CHART_DAYS days' tokens and estimated cost per model, as SVG polylines."""
    first = today - datetime.timedelta(days=CHART_DAYS - 1)
    days = [first + datetime.timedelta(days=i) for i in range(CHART_DAYS)]
    daily: dict[str, dict[datetime.date, tuple[int, float]]] = {}
    recent = rows.filter(day__gte=first, day__lte=today).order_by()
    for row in recent.values("model", "day").annotate(**SUMS):
        counts = _counts(row)
        spent = cost(row["model"], **counts) or 0.0
        daily.setdefault(row["model"], {})[row["day"]] = (
            counts["prompt"] + counts["completion"],
            spent,
        )
    models = sorted(daily)
    tokens = {m: [daily[m].get(d, (0, 0.0))[0] for d in days] for m in models}
    costs = {m: [daily[m].get(d, (0, 0.0))[1] for d in days] for m in models}
    return {
        "first": first,
        "last": today,
        "width": WIDTH,
        "height": HEIGHT,
        "tokens": _lines(tokens),
        "cost": _lines(costs),
    }


def _lines(series: dict[str, list]) -> dict:
    top = max((max(values) for values in series.values()), default=0) or 1
    step = WIDTH / (CHART_DAYS - 1)
    lines = [
        {
            "model": model,
            "colour": COLOURS[i % len(COLOURS)],
            "points": " ".join(
                f"{x * step:.1f},{HEIGHT - value / top * HEIGHT:.1f}"
                for x, value in enumerate(values)
            ),
        }
        for i, (model, values) in enumerate(series.items())
    ]
    return {"top": top, "lines": lines}
