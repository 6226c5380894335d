"""CSRF on every form, cookies hardened outside DEBUG, login on every customer page."""

from __future__ import annotations

import importlib
import json

import pytest
from django.test import Client

from accounts.models import ApiKey
from tests.factories import Personas

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(personas: Personas) -> Client:
    personas.funded.email_verified = True
    personas.funded.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.funded)
    return client


def form_posts(personas: Personas) -> list[tuple[str, dict]]:
    key = personas.funded_key.key.pk
    return [
        ("/dashboard/keys/", {"name": "x"}),
        (f"/dashboard/keys/{key}/", {"name": "x"}),
        (f"/dashboard/keys/{key}/revoke/", {}),
        ("/dashboard/billing/topup/", {"preset": "500"}),
        ("/verify/resend/", {}),
        ("/logout/", {}),
        ("/i18n/setlang/", {"language": "vi"}),
    ]


def test_every_customer_form_refuses_a_post_without_the_csrf_token(
    strict: Client, personas: Personas
) -> None:
    for url, data in form_posts(personas):
        assert strict.post(url, data).status_code == 403, url
    key = ApiKey.objects.get(pk=personas.funded_key.key.pk)
    assert key.status == "active" and key.name == "funded key"
    assert ApiKey.objects.filter(user=personas.funded).count() == 1


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/signup/", {"email": "a@example.com", "password": "long enough passphrase"}),
        ("/login/", {"username": "funded@example.com", "password": "x"}),
        ("/password-reset/", {"email": "funded@example.com"}),
    ],
)
def test_public_forms_refuse_a_post_without_the_csrf_token(
    personas: Personas, url: str, data: dict
) -> None:
    assert Client(enforce_csrf_checks=True).post(url, data).status_code == 403


def test_the_management_api_with_a_session_needs_the_csrf_token(
    strict: Client, personas: Personas
) -> None:
    response = strict.post("/api/keys/", json.dumps({"name": "x"}), content_type="application/json")
    assert response.status_code == 403
    assert ApiKey.objects.filter(user=personas.funded).count() == 1


def test_forms_work_with_the_token(strict: Client, personas: Personas) -> None:
    page = strict.get("/dashboard/keys/")
    token = page.context["csrf_token"]
    response = strict.post(
        "/dashboard/keys/", {"name": "with token", "csrfmiddlewaretoken": str(token)}, follow=True
    )
    assert response.status_code == 200 and "sk-nx-" in response.content.decode()


@pytest.mark.parametrize(("debug", "secure"), [("0", True), ("1", False)])
def test_session_and_csrf_cookies_are_secure_and_httponly_outside_debug(
    monkeypatch: pytest.MonkeyPatch, debug: str, secure: bool
) -> None:
    monkeypatch.setenv("DEBUG", debug)
    import nexai.settings as project_settings

    reloaded = importlib.reload(project_settings)
    try:
        assert reloaded.SESSION_COOKIE_HTTPONLY is True
        assert reloaded.SESSION_COOKIE_SECURE is secure
        assert reloaded.CSRF_COOKIE_SECURE is secure
    finally:
        monkeypatch.delenv("DEBUG")
        importlib.reload(project_settings)


def test_the_session_cookie_is_sent_secure_and_httponly(settings, personas: Personas) -> None:  # type: ignore[no-untyped-def]
    settings.SESSION_COOKIE_SECURE = True
    client = Client()
    client.post("/login/", {"username": "staff@example.com", "password": "staff-pass-123"})
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"]


def test_pages_cannot_be_framed(client: Client) -> None:
    assert client.get("/").headers["X-Frame-Options"] == "DENY"


def test_a_refused_form_shows_the_branded_page_not_djangos(db: None) -> None:
    answer = Client(enforce_csrf_checks=True).post("/login/", {"username": "a", "password": "b"})
    assert answer.status_code == 403
    page = answer.content.decode()
    assert 'data-testid="error-page"' in page and "CSRF verification failed" not in page
