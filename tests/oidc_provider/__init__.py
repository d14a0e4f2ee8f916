"""A real OpenID Connect provider for the tests: django-oauth-toolkit's, in a small Django
project of its own, served on loopback by `python -m tests.oidc_provider` (see `Provider`)."""
