"""Signing up and logging in through the real pages."""

from django.test import Client

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"


def sign_up(client: Client, username: str, **extra: str):
    data = {
        "username": username,
        "password1": "a-long-passphrase-9",
        "password2": "a-long-passphrase-9",
        **extra,
    }
    return client.post(SIGNUP, data)


def log_in(client: Client, username: str, password: str = "a-long-passphrase-9"):
    return client.post(LOGIN, {"username": username, "password": password})
