from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import Preferences


def preferences(request: HttpRequest) -> dict:
    """The user's preferences for every page (base.html sets the theme from them); read only
    where a template uses them."""
    return {"preferences": SimpleLazyObject(lambda: Preferences.objects.for_user(request.user))}


def access(request: HttpRequest) -> dict:
    """What the log-in and sign-up pages offer: a reset by e-mail, a sign-up link."""
    from allauth.account.adapter import get_adapter
    from django.conf import settings
    from django.contrib.auth import get_user_model

    has_users = SimpleLazyObject(lambda: get_user_model().objects.exists())
    return {
        "access": {
            "email": bool(settings.EMAIL),
            "signup": settings.SIGNUP,
            # An empty install lets its first person sign up (they run it).
            "signup_open": SimpleLazyObject(
                lambda: settings.SIGNUP in {"open", "approval"} or not has_users
            ),
            "has_users": has_users,
            # An invitation lets its holder in without a moderator (teams/access.py).
            "vouched": SimpleLazyObject(lambda: get_adapter(request).vouched(request)),
        }
    }
