import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils import translation

from kimichat import catalogue, limits
from kimichat import kimi as kimi_client
from kimichat.asgi import application
from tests.api_fixtures import alice_key, api_server  # noqa: F401  (one server a run)
from tests.kimi_stub import KimiStub, Script

ORIGIN = (b"origin", b"http://localhost")


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
    kimi_stub.script = Script()
    kimi_stub.requests.clear()
    kimi_stub.reads.clear()
    settings.MOONSHOT_API_KEY = "sk-test"
    settings.MOONSHOT_BASE_URL = kimi_stub.base_url
    settings.KIMI_MAX_RETRIES = 0
    settings.KIMI_RETRY_BACKOFF = 0.01
    settings.KIMI_AUTO_TITLE = False
    return kimi_stub


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


async def connect(
    user: User | None, path: str, origin: tuple = ORIGIN, language: str = "en"
) -> WebsocketCommunicator:
    """A websocket through the real ASGI application, logged in as `user` by session cookie."""
    # The browser's page is on the host the socket connects to (kimichat/origin.py).
    headers = [origin, (b"host", b"localhost"), (b"accept-language", language.encode())]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    return communicator


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


def add_thread(conversation, *messages: dict) -> list:
    """Messages that follow one another (each answering the one before), shown as the thread."""
    from conversations.models import Message

    parent = conversation.leaf
    saved = []
    for fields in messages:
        parent = Message.objects.create(conversation=conversation, parent=parent, **fields)
        saved.append(parent)
    conversation.leaf = parent
    conversation.save(update_fields=["leaf"])
    return saved
