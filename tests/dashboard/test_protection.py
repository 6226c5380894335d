"""What stands between the sign-up gift and the log-in form and someone abusing them:
attempt limits per address and per account, answers that never say whether an account
exists, one gift per mailbox, no throwaway addresses, and an optional captcha."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.test import Client

from accounts.mailbox import canonical_email
from accounts.models import User
from billing.services import wallet_for

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def customer(email: str = "owner@example.com") -> User:
    return User.objects.create_user(email=email, password=PASSWORD, email_verified=True)


def log_in(client: Client, email: str, password: str, ip: str = "203.0.113.7") -> str:
    response = client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)
    return "ok" if response.status_code == 302 else response.content.decode()


# ---- log in ---------------------------------------------------------------------------------


def test_an_account_locks_after_five_wrong_passwords_even_for_the_right_one(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT = 5
    customer()
    for n in range(5):
        # Each from another address: the lock follows the account, not the client.
        page = log_in(Client(), "owner@example.com", f"guess {n}", ip=f"198.51.100.{n}")
        assert "do not match" in page
    page = log_in(Client(), "Owner@Example.com", PASSWORD, ip="192.0.2.1")
    assert "Too many attempts" in page and "15 minutes" in page
    # Another account is not affected.
    customer("other@example.com")
    assert log_in(Client(), "other@example.com", PASSWORD) == "ok"


def test_a_successful_login_resets_the_account_counter(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT = 3
    customer()
    for _ in range(2):
        log_in(Client(), "owner@example.com", "wrong")
    assert log_in(Client(), "owner@example.com", PASSWORD) == "ok"
    for _ in range(2):
        log_in(Client(), "owner@example.com", "wrong")
    assert log_in(Client(), "owner@example.com", PASSWORD) == "ok"


def test_one_address_guessing_many_accounts_is_locked_out(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_LOGIN_ATTEMPTS_PER_IP = 4
    customer()
    for n in range(4):
        log_in(Client(), f"user{n}@example.com", "guess", ip="203.0.113.9")
    assert "Too many attempts" in log_in(Client(), "owner@example.com", PASSWORD, ip="203.0.113.9")
    assert log_in(Client(), "owner@example.com", PASSWORD, ip="203.0.113.10") == "ok"


def test_the_lockout_reads_the_same_for_an_address_without_an_account(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT = 2
    customer()
    pages = {}
    for email in ("owner@example.com", "nobody@example.com"):
        for n in range(3):
            pages[email] = log_in(Client(), email, "wrong", ip=f"198.51.100.{n}")

    def alert(page: str) -> str:
        return re.search(r'data-testid="login-error">(.*?)</div>', page, re.S).group(1)

    assert "Too many attempts" in alert(pages["owner@example.com"])
    assert alert(pages["owner@example.com"]) == alert(pages["nobody@example.com"])


# ---- sign up --------------------------------------------------------------------------------


def test_sign_ups_from_one_address_are_limited(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_SIGNUPS_PER_IP_PER_HOUR = 2
    for n in range(2):
        response = Client().post(
            "/signup/",
            {"email": f"bulk{n}@example.com", "password": PASSWORD},
            REMOTE_ADDR="203.0.113.5",
        )
        assert response.status_code == 302
    refused = Client().post(
        "/signup/", {"email": "bulk9@example.com", "password": PASSWORD}, REMOTE_ADDR="203.0.113.5"
    )
    assert refused.status_code == 200 and "Too many sign-ups" in refused.content.decode()
    assert not User.objects.filter(email="bulk9@example.com").exists()


def test_a_throwaway_address_cannot_sign_up(client: Client) -> None:
    for email in ("x@mailinator.com", "y@inbox.yopmail.com"):
        response = client.post("/signup/", {"email": email, "password": PASSWORD})
        assert (
            response.status_code == 200 and "permanent email address" in response.content.decode()
        )
    assert not User.objects.exists() and not mail.outbox


@pytest.mark.parametrize(
    ("spelling", "mailbox"),
    [
        ("Ada.Lovelace+nexai@Gmail.com", "adalovelace@gmail.com"),
        ("ada.lovelace@googlemail.com", "adalovelace@gmail.com"),
        ("ada+2@example.com", "ada@example.com"),
        ("a.da@example.com", "a.da@example.com"),
    ],
)
def test_addresses_are_reduced_to_their_mailbox(spelling: str, mailbox: str) -> None:
    assert canonical_email(spelling) == mailbox


def test_the_gift_goes_once_to_a_mailbox_however_it_is_spelled() -> None:
    first, second = Client(), Client()
    first.post("/signup/", {"email": "ada.lovelace@gmail.com", "password": PASSWORD})
    second.post("/signup/", {"email": "adalovelace+again@gmail.com", "password": PASSWORD})
    links = [re.search(r"http://\S+/verify/\S+/", m.body).group(0) for m in mail.outbox]
    first.get(links[0])
    response = second.get(links[1], follow=True)
    assert "already received the welcome credits" in response.content.decode()
    one = User.objects.get(email="ada.lovelace@gmail.com")
    two = User.objects.get(email="adalovelace+again@gmail.com")
    assert two.email_verified  # verified, and may create keys, but no second gift
    assert (wallet_for(user=one).balance, wallet_for(user=two).balance) == (5_000_000, 0)


# ---- password reset -------------------------------------------------------------------------


def test_password_reset_answers_the_same_for_any_address() -> None:
    customer()
    known = Client().post("/password-reset/", {"email": "owner@example.com"})
    unknown = Client().post("/password-reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]


def test_password_reset_mails_are_limited_per_address_and_per_client(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_RESETS_PER_IP_PER_HOUR = 5
    customer()
    for n in range(5):
        response = Client().post(
            "/password-reset/", {"email": "owner@example.com"}, REMOTE_ADDR=f"198.51.100.{n}"
        )
        assert response.status_code == 302  # the same answer every time...
    assert len(mail.outbox) == 3  # ...but at most three mails an hour to one address
    for _ in range(5):
        Client().post("/password-reset/", {"email": "x@example.com"}, REMOTE_ADDR="203.0.113.1")
    refused = Client().post(
        "/password-reset/", {"email": "owner@example.com"}, REMOTE_ADDR="203.0.113.1"
    )
    assert refused.status_code == 200 and "Too many attempts" in refused.content.decode()


# ---- captcha --------------------------------------------------------------------------------


class _Siteverify(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        _Siteverify.seen.append(form)
        ok = form.get("response") == ["human-token"] and form.get("secret") == ["captcha-secret"]
        body = json.dumps({"success": ok}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def captcha(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A captcha service speaking Turnstile's siteverify protocol, on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Siteverify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NEXAI_CAPTCHA_SITE_KEY = "site-key"
    settings.NEXAI_CAPTCHA_SECRET = "captcha-secret"
    settings.NEXAI_CAPTCHA_VERIFY_URL = f"http://127.0.0.1:{server.server_port}/siteverify"
    _Siteverify.seen = []
    yield "site-key"
    server.shutdown()
    server.server_close()


def test_with_a_captcha_set_a_sign_up_needs_a_genuine_token(client: Client, captcha: str) -> None:
    page = client.get("/signup/").content.decode()
    assert 'data-sitekey="site-key"' in page
    bot = client.post("/signup/", {"email": "bot@example.com", "password": PASSWORD})
    assert bot.status_code == 200 and "not a robot" in bot.content.decode()
    forged = client.post(
        "/signup/",
        {"email": "bot@example.com", "password": PASSWORD, "cf-turnstile-response": "forged"},
    )
    assert forged.status_code == 200 and not User.objects.exists()
    human = client.post(
        "/signup/",
        {
            "email": "human@example.com",
            "password": PASSWORD,
            "cf-turnstile-response": "human-token",
        },
    )
    assert human.status_code == 302 and User.objects.filter(email="human@example.com").exists()
    assert _Siteverify.seen[-1]["remoteip"] == ["127.0.0.1"]


def test_without_a_captcha_setting_the_page_has_none(client: Client) -> None:
    assert "turnstile" not in client.get("/signup/").content.decode()


def test_accounts_gifted_before_the_rule_keep_their_mailbox_claimed() -> None:
    import importlib

    from django.apps import apps

    from accounts.models import SignupGiftClaim
    from billing.services import signup_grant

    old = customer("Grace.Hopper@gmail.com")
    signup_grant(user=old)  # as before claims existed
    SignupGiftClaim.objects.all().delete()
    backfill = importlib.import_module("accounts.migrations.0004_backfill_gift_claims")
    backfill.claim_existing(apps, None)
    backfill.claim_existing(apps, None)  # running twice changes nothing
    assert list(SignupGiftClaim.objects.values_list("canonical_email", "user")) == [
        ("gracehopper@gmail.com", old.pk)
    ]
