from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection

from accounts import keycache
from core.clock import clock
from tests.factories import Personas, make_personas


def pytest_configure(config: pytest.Config) -> None:
    from tests.fakes import network_guard

    network_guard.install()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` need real row locks and concurrent connections, and
    those marked `redis` state shared by several processes; without those servers they
    are deselected (reported, not counted), and CI's second pass runs them."""
    from django.conf import settings

    missing = set()
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        missing.add("postgres")
    if not settings.REDIS_URL:
        missing.add("redis")
    else:
        missing.add("embedded")  # tests of the in-process stores, which Redis replaces
    dropped = [item for item in items if missing & set(item.keywords)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not missing & set(item.keywords)]


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    """Every test starts with empty caches, wallet copies, rate windows and cooldowns
    (with REDIS_URL set, cache.clear() empties the test Redis database)."""
    from gateway import spend, upstream
    from providers import catalogue

    clock.reset()
    cache.clear()
    spend.renew_liveness()  # emptied with the rest of the test Redis database
    keycache.clear_local()
    spend._local_store.reset()
    upstream.reset_cooldowns()
    catalogue.reset()


@pytest.fixture
def personas(db: None) -> Personas:
    return make_personas()


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def live_app(transactional_db: None):  # type: ignore[no-untyped-def]
    """The whole project (HTTP and websockets) on a real port, sharing the test DB."""
    from tests.servers import AsgiServer

    server = AsgiServer().start()
    yield server
    server.stop()
