"""What bounds one API call beyond the account's own rules: the key's expiry, models, budget
and requests a minute, and the call's worst case held against the budgets before it starts.
(The account's rules, shared with the page, are in api.services.call_start.)"""

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.admission import Standing
from api.errors import Refusal
from api.models import ApiCall, ApiKey, BudgetPeriod
from kimi import catalogue


def seconds_until(moment: datetime) -> int:
    return max(1, math.ceil((moment - timezone.now()).total_seconds()))


def next_midnight() -> datetime:
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


def budget_end(key: ApiKey) -> datetime:
    start = key.budget_start()
    if key.budget_period == BudgetPeriod.MONTH:
        return (start + timedelta(days=32)).replace(day=1)
    return start + timedelta(days=1)


def admit_key(key: ApiKey, model: str) -> None:
    """The key's own bounds: the models it may use and its requests a minute."""
    if key.allowed_models and model not in key.allowed_models:
        raise Refusal(
            403,
            "permission_denied_error",
            _("This API key may not use %(model)s; it may use: %(models)s.")
            % {"model": model, "models": ", ".join(key.allowed_models)},
            code="model_not_allowed",
        )
    if key.requests_per_minute:
        count, first = ApiCall.objects.of_key_recent(key)
        if count >= key.requests_per_minute:
            wait = seconds_until(first + timedelta(minutes=1)) if first else 1
            raise Refusal(
                429,
                "rate_limit_reached_error",
                _("This API key may make %(count)s requests a minute. Try again in %(wait)s s.")
                % {"count": key.requests_per_minute, "wait": wait},
                code="rate_limit",
                retry_after=wait,
            )


def tokens_left(key: ApiKey, standing: Standing, running: dict) -> int | None:
    """Tokens the call may spend at most: what is left of the user's daily quota and of the
    key's budget, less what the calls running now may still spend. None: no bound."""
    bounds = []
    if standing.quota:
        # int(): PostgreSQL sums big integers as numeric (a Decimal).
        bounds.append(standing.quota - standing.used - int(running["held"] or 0))
    if key.token_budget:
        left = key.token_budget - key.spent_since(key.budget_start())
        if left <= 0:
            raise _budget_spent(key)
        bounds.append(left)
    return min(bounds) if bounds else None


def _budget_spent(key: ApiKey) -> Refusal:
    return Refusal(
        429,
        "exceeded_current_quota_error",
        _("This API key has spent its budget of %(budget)s tokens %(period)s.")
        % {"budget": f"{key.token_budget:,}", "period": key.get_budget_period_display()},
        code="insufficient_quota",
        retry_after=seconds_until(budget_end(key)),
    )


def answer_cap(model: str, prompt: int, asked: int | None, left: int | None) -> int | None:
    """The most the answer may write: what the client asked (within the model's window), and,
    where a budget bounds the call, no more than it leaves after the prompt. Refuses a call
    whose prompt alone would overshoot the budget. None: the client's and Kimi's own cap."""
    room = max(1, catalogue.context_window(model) - prompt)
    cap = min(asked, room) if asked else None
    if left is None:
        return cap
    if left - prompt <= 0:
        raise Refusal(
            429,
            "exceeded_current_quota_error",
            _(
                "This call's prompt (about %(prompt)s tokens) is more than the %(left)s tokens "
                "left of your quota or your key's budget."
            )
            % {"prompt": f"{prompt:,}", "left": f"{max(left, 0):,}"},
            code="insufficient_quota",
        )
    return min(cap or room, left - prompt)


def key_limits(key: ApiKey) -> dict[str, Any]:
    """What GET /v1/key tells a key of itself: its bounds and what it has spent."""
    start = key.budget_start()
    return {
        "object": "api_key",
        "name": key.name,
        "starts_with": key.prefix,
        "created_at": int(key.created_at.timestamp()),
        "expires_at": int(key.expires_at.timestamp()) if key.expires_at else None,
        "models": key.allowed_models or catalogue.offered(),
        "requests_per_minute": key.requests_per_minute or settings.USER_MESSAGES_PER_MINUTE,
        "budget": {
            "tokens": key.token_budget or None,
            "period": key.budget_period,
            "spent": key.spent_since(start),
            "period_started_at": int(start.timestamp()),
            "renews_at": int(budget_end(key).timestamp()),
        },
    }
