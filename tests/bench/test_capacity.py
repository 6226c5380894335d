"""The capacity arithmetic of the scale-out benchmark (bench/capacity.py): where each
component saturates and how many gateway hosts it serves."""

from __future__ import annotations

import math

import pytest

from bench import capacity


def test_a_component_saturates_when_its_cores_are_all_busy():
    assert capacity.saturation(0.25) == pytest.approx(4000)
    assert capacity.saturation(0.5, cores=4) == pytest.approx(8000)
    assert capacity.saturation(0.0) == math.inf


def test_hosts_served_divide_each_components_limit_by_a_host_flat_out():
    rows = capacity.limits(
        gateway_ms=1.0, writer_ms=0.5, postgres_ms=0.2, redis_ms=0.1, host_cores=2,
        postgres_cores=4, flat_out=capacity.FlatOut(writer_rate=24_000, postgres_ms=0.05),
    )  # fmt: skip
    by_key = {row.key: (row.rps, row.hosts) for row in rows}
    assert by_key["host"] == pytest.approx((2000, 1))
    assert by_key["redis"] == pytest.approx((10_000, 5))
    assert by_key["writer"] == pytest.approx((2000, 1))
    assert by_key["postgres"] == pytest.approx((20_000, 10))
    assert by_key["writer flat out"] == pytest.approx((24_000, 12))
    assert by_key["postgres flat out"] == pytest.approx((80_000, 40))


def test_without_the_write_paths_figures_there_are_no_flat_out_rows():
    rows = capacity.limits(
        gateway_ms=1.0, writer_ms=0.5, postgres_ms=0.2, redis_ms=0.0, host_cores=2,
        postgres_cores=2,
    )  # fmt: skip
    assert [row.key for row in rows] == ["host", "redis", "writer", "postgres"]
    assert rows[1].rps == math.inf  # nothing measured: no limit to show
