from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import sync_and_async_middleware

from accounts.models import two_factor_missing

# What staff without two-factor may still reach: setting it up, and leaving.
_OPEN = (
    "mfa_activate_totp",
    "mfa_index",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "account_reauthenticate",
    "logout",
)


def _blocked(request) -> bool:
    """With MFA_REQUIRED_FOR_STAFF, staff who have not turned on two-factor (TOTP) reach only
    the pages that turn it on."""
    if not settings.MFA_REQUIRED_FOR_STAFF:
        return False
    if request.path.startswith(settings.STATIC_URL) or request.path in {
        reverse(name) for name in _OPEN
    }:
        return False
    return two_factor_missing(request.user)


@sync_and_async_middleware
def staff_mfa_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware_async(request):
            if settings.MFA_REQUIRED_FOR_STAFF and await sync_to_async(_blocked)(request):
                return redirect(reverse("mfa_activate_totp") + "?required=1")
            return await get_response(request)

        return middleware_async

    def middleware(request):
        if _blocked(request):
            return redirect(reverse("mfa_activate_totp") + "?required=1")
        return get_response(request)

    return middleware
