from allauth.account.apps import AccountConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EmailAddressesConfig(AccountConfig):
    """django-allauth's account app, named for what the admin lists under it: its own name,
    "Accounts", is this project's app's too (two sections of one name)."""

    default = False
    verbose_name = _("E-mail addresses")


class AccountsConfig(AppConfig):
    default = True  # this module holds other configs: this one is the accounts app's
    name = "accounts"
    verbose_name = _("Accounts")
