"""Money in đồng, credits inside: the operator's rate, integer conversion rounded down,
đồng as Vietnamese write them, and a server that refuses a rate it cannot use."""

from __future__ import annotations

import importlib
from datetime import date

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from billing.exchange import Rate, format_vnd, parse_vnd
from tests.factories import make_user

RATE = Rate(vnd_per_usd=25_400, set_on=date(2026, 12, 1))


@pytest.mark.parametrize(
    ("vnd", "credits"),
    [
        (100_000, 3_937_007),  # 3,937,007.87...: the fraction of a credit stays with us
        (25_400, 1_000_000),  # exactly US$1
        (1, 39),
        (0, 0),
        (50_000_000, 1_968_503_937),
    ],
)
def test_dong_become_whole_credits_rounded_down(vnd: int, credits: int) -> None:
    assert RATE.credits_for(vnd) == credits
    # Never more than what was paid, never short by a whole credit.
    assert credits * 25_400 <= vnd * 1_000_000 < (credits + 1) * 25_400


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100000"])
def test_only_whole_dong_are_converted(bad: object) -> None:
    with pytest.raises(ValueError):
        RATE.credits_for(bad)  # type: ignore[arg-type]


def test_dong_are_written_as_each_language_writes_them() -> None:
    assert format_vnd(1_234_567, language="vi") == "1.234.567 ₫"
    assert format_vnd(1_234_567, language="en") == "1,234,567 ₫"
    for typed in ("150.000", "150,000", "150 000 ₫", "150000", "150.000đ"):
        assert parse_vnd(typed) == 150_000
    for typed in ("150.5", "1,50,000", "abc", "-150000", ""):
        with pytest.raises(ValueError):
            parse_vnd(typed)


@pytest.mark.django_db
def test_in_vietnamese_balances_are_shown_in_dong_too(vnd_rate: int) -> None:
    user = make_user(credits=50_000_000)  # US$50
    client = Client()
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert "$50.00" in page and "₫" not in page
    client.post("/i18n/setlang/", {"language": "vi", "next": "/"})
    for url in ("/dashboard/", "/dashboard/billing/"):
        page = client.get(url).content.decode()
        assert "$50.00" in page and "≈ 1.270.000 ₫" in page, url


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"NEXAI_VND_PER_USD": "25400"}, "NEXAI_VND_PER_USD_DATE"),
        ({"NEXAI_VND_PER_USD": "254", "NEXAI_VND_PER_USD_DATE": "2026-12-01"}, "about 25000"),
        ({"NEXAI_VND_PER_USD": "25400", "NEXAI_VND_PER_USD_DATE": "1/12/2026"}, "YYYY-MM-DD"),
        ({"PAYOS_CLIENT_ID": "a", "PAYOS_API_KEY": "b"}, "PAYOS_CHECKSUM_KEY"),
        (
            {"PAYOS_CLIENT_ID": "a", "PAYOS_API_KEY": "b", "PAYOS_CHECKSUM_KEY": "c"},
            "needs NEXAI_VND_PER_USD",
        ),
        ({"SEPAY_API_KEY": "k", "SEPAY_BANK_BIN": "970422"}, "SEPAY_ACCOUNT_NUMBER"),
    ],
)
def test_a_server_refuses_to_start_with_a_rail_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], error: str
) -> None:
    import nexai.settings as project_settings

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ImproperlyConfigured, match=error):
            importlib.reload(project_settings)
    finally:
        for name in environ:
            monkeypatch.delenv(name)
        importlib.reload(project_settings)
