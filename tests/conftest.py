from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection

from accounts import keycache
from core.clock import clock
from tests.factories import Personas, make_personas
from tests.fakes.payos import FakePayOS
from tests.fakes.sepay import FakeSePay
from tests.rails import SEPAY_KEY, use_payos, use_rate, use_sepay


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


@pytest.fixture
def vnd_rate(settings) -> int:  # type: ignore[no-untyped-def]
    """The operator's rate: 25,400 ₫ for US$1, set on 1 December 2026."""
    return use_rate(settings)


@pytest.fixture
def fake_payos(settings) -> Iterator[FakePayOS]:  # type: ignore[no-untyped-def]
    """payOS on 127.0.0.1, configured as an operator configures the real one."""
    with FakePayOS() as fake:
        yield use_payos(settings, fake)


@pytest.fixture
def fake_sepay(settings) -> Iterator[FakeSePay]:  # type: ignore[no-untyped-def]
    """SePay watching the operator's account, its webhook key and API token set."""
    with FakeSePay(webhook_key=SEPAY_KEY) as fake:
        yield use_sepay(settings, fake)
