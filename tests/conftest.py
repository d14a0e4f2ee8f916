import pytest
from asgiref.sync import SyncToAsync
from django.contrib.auth.models import User
from django.db import connections
from django.utils import translation

import kimi as kimi_client
from kimi import catalogue, formulas
from realtime import limits
from tests.helpers.api import alice_key, api_server  # noqa: F401  (one server a run)
from tests.helpers.kimi_stub import LEGACY_MODELS, KimiStub


def pytest_itemcollected(item: pytest.Item) -> None:
    """Browser tests (tests/e2e/) are marked `e2e`: `-m e2e` runs them, `-m "not e2e"` the rest."""
    if "e2e" in item.path.parts:
        item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last (after pytest-django has put its groups in order): Playwright's
    sync API leaves an event loop running in the main thread, where no async test can run
    after it."""
    items.sort(key=lambda item: "e2e" in item.path.parts)


@pytest.fixture(scope="session", autouse=True)
def _close_async_db_connections(django_db_setup, django_db_blocker):
    """Async tests reach the database from asgiref's one shared thread; close its
    connections before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(scope="session")
def kimi_stub():
    stub = KimiStub().start_in_thread()
    yield stub
    stub.stop()


@pytest.fixture
def kimi(kimi_stub, settings):
    """The Kimi stub, reset, with the app pointed at it."""
    kimi_stub.reset()
    settings.MOONSHOT_API_KEY = "sk-test"
    settings.MOONSHOT_BASE_URL = kimi_stub.base_url
    settings.KIMI_MAX_RETRIES = 0
    settings.KIMI_RETRY_BACKOFF = 0.01
    settings.KIMI_AUTO_TITLE = False
    return kimi_stub


@pytest.fixture
def older_kimi(kimi, settings):
    """Kimi as it was before it retired moonshot-v1 and the kimi-k2 previews (models that
    never think, sampling of one's own), for what KimiChat still does with such a model
    where an operator names one."""
    kimi.script.models = [dict(m) for m in LEGACY_MODELS]
    settings.KIMI_MODELS = [m["id"] for m in LEGACY_MODELS]
    return kimi


@pytest.fixture
async def close_kimi_clients():
    """Each test has its own event loop; the SDK's connections must not outlive it."""
    yield
    await kimi_client.aclose()


@pytest.fixture(autouse=True)
def _models_offered(settings):
    """KIMI_MODELS is offered, as when Kimi was never read, unless a test reads Kimi's list
    itself (tests/test_models.py): nothing reads it behind a test's back, and what one test
    read is gone for the next."""
    settings.KIMI_MODELS_REFRESH = 0
    yield
    catalogue.forget()
    formulas.forget()


@pytest.fixture(autouse=True)
def _default_language():
    # Django's test client serves a page in this thread: one asked for in Chinese leaves
    # Chinese on here, for whatever the next test renders.
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_limits():
    # Each test's users start with full buckets and no sockets counted.
    limits.forget()


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    """A cache of each test's own: log-in throttling counts what one test does, not the
    failures of the tests before it."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", password="password")


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", password="password")


@pytest.fixture(autouse=True)
def _storages(settings, tmp_path):
    # Pages render without a collectstatic manifest; uploads go to a folder of the test's.
    settings.STORAGES = {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }
