"""What a request carries here, for type checking: django-htmx's details on every request, and
a user who is logged in behind `login_required` (django-stubs types `request.user` as a user
or AnonymousUser)."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class AuthenticatedRequest(HtmxRequest):
    user: User
