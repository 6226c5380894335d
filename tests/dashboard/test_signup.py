"""Signing up, verifying the address (which grants the gift, once), logging in and out,
and resetting a password."""

from __future__ import annotations

import re

import pytest
from django.core import mail, signing
from django.test import Client

from accounts.models import ApiKey, User
from billing.models import LedgerEntry
from billing.services import wallet_for
from dashboard.services import email_verification_token

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def sign_up(client: Client, email: str = "new@example.com", *, login: bool = True) -> User:
    response = client.post("/signup/", {"email": email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/signup/sent/"
    user = User.objects.get(email=email.lower())
    if login:  # as after logging in with the new password, before verifying
        client.force_login(user)
    return user


def link_in(message: mail.EmailMessage) -> str:
    return re.search(r"https?://\S+/verify/\S+/", message.body).group(0)


def test_signing_up_mails_a_verification_link_and_says_so(client: Client) -> None:
    response = client.post("/signup/", {"email": "Ada@Example.com", "password": PASSWORD})
    sent = client.get(response["Location"]).content.decode()
    assert "Check your inbox" in sent and "ada@example.com" in sent
    user = User.objects.get(email="ada@example.com")
    client.force_login(user)
    assert user.email == "ada@example.com" and not user.email_verified
    assert user.check_password(PASSWORD)
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert link_in(message).startswith("http://testserver/verify/")
    page = client.get("/dashboard/").content.decode()
    assert "Verify your email address" in page
    # No gift before verification.
    assert wallet_for(user=user).balance == 0


def test_verifying_grants_the_gift_once_however_often_the_link_is_opened(client: Client) -> None:
    user = sign_up(client)
    link = link_in(mail.outbox[0])
    for _ in range(3):
        response = client.get(link)
        assert response.status_code == 302 and response["Location"] == "/dashboard/"
    user.refresh_from_db()
    assert user.email_verified
    assert wallet_for(user=user).balance == 5_000_000
    assert LedgerEntry.objects.filter(wallet__user=user, kind="signup_grant").count() == 1
    page = client.get("/dashboard/").content.decode()
    assert "Verify your email address" not in page
    assert "$5.00" in page


def test_the_link_works_from_a_logged_out_browser_too() -> None:
    sign_up(Client())
    response = Client().get(link_in(mail.outbox[0]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert User.objects.get().email_verified


def test_the_browser_that_signed_up_is_logged_in_by_the_link(client: Client) -> None:
    sign_up(client, login=False)
    assert client.get("/dashboard/").status_code == 302  # not logged in before
    response = client.get(link_in(mail.outbox[0]))
    assert response["Location"] == "/dashboard/"
    assert "$5.00" in client.get("/dashboard/").content.decode()


@pytest.mark.parametrize("token", ["garbage", "x" * 80])
def test_a_forged_link_is_refused(client: Client, token: str) -> None:
    user = sign_up(client)
    response = client.get(f"/verify/{token}/")
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.email_verified and wallet_for(user=user).balance == 0


def test_an_expired_link_is_refused(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    user = sign_up(client)
    token = email_verification_token(user=user)
    monkeypatch.setattr("dashboard.services.VERIFY_MAX_AGE", -1)
    response = client.get(f"/verify/{token}/")
    assert response.status_code == 400 and "expired" in response.content.decode()


def test_a_link_for_an_old_address_stops_working(client: Client) -> None:
    user = sign_up(client)
    token = email_verification_token(user=user)
    user.email = "changed@example.com"
    user.save()
    assert client.get(f"/verify/{token}/").status_code == 400


def test_a_link_signed_with_another_salt_is_refused(client: Client) -> None:
    user = sign_up(client)
    token = signing.dumps({"u": user.pk, "e": user.email}, salt="something-else")
    assert client.get(f"/verify/{token}/").status_code == 400


def test_unverified_accounts_cannot_create_keys(client: Client) -> None:
    sign_up(client)
    page = client.get("/dashboard/keys/").content.decode()
    assert "Verify your email address to create API keys" in page
    response = client.post("/dashboard/keys/", {"name": "sneaky"}, follow=True)
    assert not ApiKey.objects.exists()
    assert "Verify your email address" in response.content.decode()
    api = client.post("/api/keys/", {"name": "sneaky"}, content_type="application/json")
    assert api.status_code == 403 and not ApiKey.objects.exists()


def test_resending_the_link_is_throttled(client: Client) -> None:
    sign_up(client)
    client.post("/verify/resend/")
    assert len(mail.outbox) == 1  # the signup mail was sent a moment ago
    from django.core.cache import cache

    cache.clear()
    client.post("/verify/resend/")
    assert len(mail.outbox) == 2


def test_a_taken_address_gets_the_same_answer_and_its_owner_an_email(client: Client) -> None:
    """Sign-up never says whether an address has an account: the page is the same, and
    the owner is told by email instead."""
    taken = sign_up(client, "taken@example.com", login=False)
    User.objects.filter(pk=taken.pk).update(email_verified=True)
    fresh = Client().post("/signup/", {"email": "fresh@example.com", "password": PASSWORD})
    mail.outbox.clear()
    other = Client()
    response = other.post("/signup/", {"email": "TAKEN@example.com", "password": "other pass 1"})
    assert response.status_code == 302 and response["Location"] == fresh["Location"]
    page = other.get(response["Location"]).content.decode()
    assert "already" not in page and "taken@example.com" in page
    [note] = mail.outbox
    assert note.to == ["taken@example.com"] and "already has one" in note.body
    assert "/password-reset/" in note.body
    # The taken account is untouched.
    assert User.objects.filter(email="taken@example.com").count() == 1
    assert User.objects.get(email="taken@example.com").check_password(PASSWORD)


def test_signing_up_again_before_verifying_resends_the_link() -> None:
    sign_up(Client(), "lost@example.com", login=False)
    from django.core.cache import cache

    cache.clear()  # past the resend interval
    again = Client().post("/signup/", {"email": "lost@example.com", "password": "other pass 1"})
    assert again["Location"] == "/signup/sent/"
    assert len(mail.outbox) == 2 and "/verify/" in mail.outbox[1].body
    assert User.objects.get(email="lost@example.com").check_password(PASSWORD)


def test_a_weak_password_is_refused(client: Client) -> None:
    other = Client()
    response = other.post("/signup/", {"email": "weak@example.com", "password": "12345678"})
    assert response.status_code == 200
    assert not User.objects.filter(email="weak@example.com").exists()


def test_log_in_and_log_out(client: Client) -> None:
    sign_up(Client(), "login@example.com", login=False)
    response = client.post("/login/", {"username": "login@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    wrong = Client().post("/login/", {"username": "login@example.com", "password": "nope"})
    assert "do not match" in wrong.content.decode()
    assert client.post("/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_a_password_can_be_reset_by_email(client: Client) -> None:
    sign_up(Client(), "forgot@example.com", login=False)
    mail.outbox.clear()
    response = client.post("/password-reset/", {"email": "forgot@example.com"})
    assert response["Location"] == "/password-reset/sent/"
    [message] = mail.outbox
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert done["Location"] == "/password-reset/done/"
    assert User.objects.get(email="forgot@example.com").check_password("a brand new passphrase")


def test_resending_goes_back_to_the_page_but_never_off_site(client: Client) -> None:
    sign_up(client)
    back = client.post("/verify/resend/", {"next": "/dashboard/keys/"})
    assert back["Location"] == "/dashboard/keys/"
    away = client.post("/verify/resend/", {"next": "https://evil.example/phish"})
    assert away["Location"] == "/dashboard/"


def test_signing_up_twice_with_one_address_at_once_makes_one_account() -> None:
    from dashboard.services import customer_signup

    base = "http://testserver/"
    assert customer_signup(email="race@example.com", password=PASSWORD, base_url=base)
    assert customer_signup(email="RACE@example.com", password=PASSWORD, base_url=base) is None
    assert User.objects.filter(email="race@example.com").count() == 1
