"""The usage record on the wire: compact, and readable across a rolling deploy."""

from __future__ import annotations

import orjson
import pytest

from gateway.records import FIELDS, Record
from gateway.spend import Admission, Outcome


def _record() -> Record:
    return Record(
        request_id="req_1", user_id=7, api_key_id=9, endpoint="chat.completions",
        model="gpt-4o", charge=1_025, status=200, input_tokens=10, output_tokens=100,
        charge_lines=[["input", 10, 2_500_000]],
    )  # fmt: skip


def test_a_record_survives_the_wire_unchanged_as_a_plain_array() -> None:
    record = _record()
    raw = record.dumps()
    assert Record.loads(raw) == record
    assert isinstance(orjson.loads(raw), list)  # no field names on the wire


def test_records_of_an_older_or_newer_release_are_read() -> None:
    values = orjson.loads(_record().dumps())
    older = Record.loads(orjson.dumps(values[: FIELDS.index("created_at") + 1]))
    assert (older.charge, older.reasoning_tokens, older.charge_lines) == (1_025, 0, [])
    newer = Record.loads(orjson.dumps([*values, "a field this release does not know"]))
    assert newer == _record().with_values(created_at=newer.created_at)


def test_a_value_with_no_field_to_hold_it_fails_loudly() -> None:
    with pytest.raises(TypeError):
        _record().with_values(surprise_tokens=5)


def test_admission_outcomes_are_an_enum() -> None:
    assert Admission(Outcome("rate_key")).outcome is Outcome.RATE_KEY
    assert Admission(Outcome.OK).ok and not Admission(Outcome.BALANCE).ok
