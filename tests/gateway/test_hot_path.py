"""The hot path stays off the database: authentication, catalogue and admission come
from caches, and usage is written in batches afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from django.db.backends import utils

from billing.services import wallet_for
from gateway import pipeline, writer
from gateway.models import UsageRecord
from gateway.spend import store
from providers.catalogue import aget_catalogue
from tests.gateway.conftest import Customer

HELLO = [{"role": "user", "content": "hi"}]


class QueryCounter:
    """Counts SQL statements from every thread (the server runs in another one)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def __enter__(self) -> QueryCounter:
        self.statements.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[QueryCounter]:
    counter = QueryCounter()
    original = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):  # type: ignore[no-untyped-def]
        with counter.lock:
            counter.statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(utils.CursorWrapper, "_execute_with_wrappers", counting)
    yield counter


def _call(customer: Customer, *, stream: bool = False) -> None:
    body = {"model": "gpt-4o", "messages": HELLO, "stream": stream}
    headers = {"authorization": f"Bearer {customer.key.secret}"}
    url = str(customer.client.base_url) + "chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200
        response.read()


def test_a_request_with_warm_caches_makes_no_database_query(
    customer: Customer, queries: QueryCounter
) -> None:
    _call(customer)  # warms the key, catalogue and wallet caches
    with queries:
        for stream in (False, True, False, True):
            _call(customer, stream=stream)
    assert queries.statements == []


def test_the_batch_writer_makes_the_same_few_queries_for_one_request_or_twenty(
    customer: Customer, queries: QueryCounter
) -> None:
    _call(customer)
    with queries:
        writer.flush()
    one = len(queries.statements)
    for _ in range(20):
        _call(customer)
    with queries:
        writer.flush()
    assert len(queries.statements) == one
    assert one <= 12
    assert UsageRecord.objects.count() == 21


def test_a_reservation_left_by_a_dead_process_is_settled_for_what_it_delivered(
    customer: Customer,
) -> None:
    """A process that died mid-stream leaves a reservation with its last heartbeat;
    the sweep charges that and releases the rest."""
    from asgiref.sync import async_to_sync

    from accounts.keycache import authenticate

    key = authenticate(customer.key.secret).key
    model = async_to_sync(aget_catalogue)().get("gpt-4o")
    ticket = async_to_sync(pipeline.admit)(
        request_id="req_dead", key=key, model=model, endpoint="chat.completions",
        estimate=50_000, stream=True, started=0.0,
    )  # fmt: skip
    async_to_sync(pipeline.heartbeat)(ticket, charge_so_far=1_234, output_tokens=99)
    assert store().snapshot(user_id=key.user_id)["res"] == 50_000
    assert writer.settle_stale() == 0  # not stale yet
    assert writer.settle_stale(now_ms=2**62) == 1
    assert writer.settle_stale(now_ms=2**62) == 0  # exactly once
    writer.flush()
    record = UsageRecord.objects.get(request_id="req_dead")
    assert (record.charge, record.output_tokens, record.error_code) == (1_234, 99, "interrupted")
    assert record.ledger_entry.amount == -1_234
    assert wallet_for(user=customer.user).balance == 100_000_000 - 1_234
    snapshot = store().snapshot(user_id=key.user_id)
    assert snapshot["res"] == 0 and snapshot.get("pend", 0) == 0


def test_the_run_periodic_jobs_command_settles_writes_and_verifies(customer: Customer) -> None:
    from io import StringIO

    from django.core.management import call_command

    _call(customer)
    out = StringIO()
    call_command("run_periodic_jobs", stdout=out)
    assert "wrote 1 usage records" in out.getvalue()
    assert "every wallet's balance equals" in out.getvalue()
