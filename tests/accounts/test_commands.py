from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.keycache import Refusal, authenticate
from accounts.models import ApiKey, User
from billing.models import LedgerEntry
from billing.services import wallet_for
from providers.models import AiModel

pytestmark = pytest.mark.django_db


def _create(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_api_key_prints_a_working_key_on_its_last_line() -> None:
    lines = _create("--email", "a@example.com", "--credits", "1000")
    secret = lines[-1]
    result = authenticate(secret)
    assert result.ok
    user = User.objects.get(email="a@example.com")
    assert result.key.user_id == user.pk
    assert wallet_for(user=user).balance == 1000
    # Created here, the user gets no signup gift; the grant is an adjustment.
    assert list(LedgerEntry.objects.values_list("kind", "amount")) == [("adjustment", 1000)]


def test_running_it_again_adds_a_second_key_and_more_credits() -> None:
    first = _create("--email", "a@example.com", "--credits", "1000")[-1]
    second = _create("--email", "a@example.com", "--credits", "1000")[-1]
    assert first != second
    user = User.objects.get(email="a@example.com")
    assert ApiKey.objects.filter(user=user).count() == 2
    assert wallet_for(user=user).balance == 2000
    assert authenticate(first).ok and authenticate(second).ok


def test_create_api_key_sets_the_limits_it_is_given() -> None:
    AiModel.objects.create(public_id="gpt-4o")
    secret = _create(
        "--email",
        "b@example.com",
        "--name",
        "ci",
        "--rpm",
        "7",
        "--concurrency",
        "3",
        "--spend-limit",
        "500",
        "--models",
        "gpt-4o",
        "--expires-in-days",
        "3",
    )[-1]
    key = authenticate(secret).key
    assert (key.rpm, key.spend_limit, key.allowed_models) == (7, 500, ("gpt-4o",))
    assert key.concurrency == 3
    assert key.expires_at is not None
    assert ApiKey.objects.get(pk=key.key_id).name == "ci"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email"], "--email: 'not-an-email' is not a valid email address"),
        (["--email", "c@example.com", "--credits", "-5"], "--credits must be at least 0"),
        (["--email", "c@example.com", "--credits", "ten"], "--credits must be a whole number"),
        (["--email", "c@example.com", "--models", "gpt-9"], "--models: unknown model id gpt-9"),
        (
            ["--email", "c@example.com", "--expires-in-days", "0"],
            "--expires-in-days must be at least 1",
        ),
    ],
)
def test_bad_input_is_refused_with_one_line_and_changes_nothing(
    args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as raised:
        _create(*args)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert not User.objects.exists() and not ApiKey.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_revoke_api_key_by_prefix_and_suspend_with_undo() -> None:
    secret = _create("--email", "d@example.com")[-1]
    prefix = authenticate(secret).key.prefix
    call_command("suspend_api_key", secret, stdout=StringIO())
    assert ApiKey.objects.get(prefix=prefix).status == "suspended"
    call_command("suspend_api_key", prefix, "--undo", stdout=StringIO())
    assert ApiKey.objects.get(prefix=prefix).status == "active"
    call_command("revoke_api_key", prefix, stdout=StringIO())
    assert authenticate(secret).refusal == Refusal.REVOKED
    with pytest.raises(CommandError, match="no single key"):
        call_command("revoke_api_key", "sk-nx-unknown", stdout=StringIO())


def test_an_invalid_email_exits_non_zero_from_the_shell() -> None:
    run = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "--email", "nope"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].endswith("'nope' is not a valid email address")
