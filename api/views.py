"""The API keys page (new key, shown once; revoke) and "Use KimiChat from code"."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from api import services
from api.forms import ApiKeyForm
from api.models import ApiCall, ApiKey
from kimi import catalogue
from kimichat.http import AuthenticatedRequest


def _require_api() -> None:
    if not settings.API_KEYS:
        raise Http404


def _get_key_for_user(request: AuthenticatedRequest, key_id: int) -> ApiKey:
    return get_object_or_404(ApiKey.objects.for_user(request.user).active(), pk=key_id)


@login_required
def keys(request: AuthenticatedRequest) -> HttpResponse:
    _require_api()
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, text = services.key_create(
            user=request.user,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
        created = {"key": key, "text": text}
        form = ApiKeyForm()
    keys = list(ApiKey.objects.for_user(request.user).active())
    spent = ApiCall.objects.month_by_key(request.user)
    for each in keys:
        each.month_tokens = spent.get(each.pk, 0)
    context = {"form": form, "created": created, "keys": keys}
    template = "api/keys.html#keys-panel" if request.htmx else "api/keys.html"
    return render(request, template, context)


@login_required
@require_POST
def key_revoke(request: AuthenticatedRequest, key_id: int) -> HttpResponse:
    _require_api()
    key = _get_key_for_user(request, key_id)
    services.keys_revoke(keys=ApiKey.objects.filter(pk=key.pk))
    return redirect("api-keys")


@login_required
def code(request: AuthenticatedRequest) -> HttpResponse:
    _require_api()
    context = {
        "base_url": request.build_absolute_uri("/v1"),
        "model": catalogue.default_model(),
        "models": catalogue.offered(),
    }
    return render(request, "api/code.html", context)
