from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts import keycache
from accounts.keycache import Refusal, authenticate
from accounts.models import ApiKey, digest_secret
from accounts.services import (
    KeyStateError,
    api_key_create,
    api_key_find,
    api_key_reactivate,
    api_key_revoke,
    api_key_suspend,
)
from core.clock import clock
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db


def test_the_secret_is_returned_once_and_only_its_hash_is_stored() -> None:
    user = make_user()
    created = api_key_create(user=user, name="ci")
    row = ApiKey.objects.get(pk=created.key.pk)
    assert created.secret.startswith("sk-nx-") and len(created.secret) == 49
    assert row.digest == digest_secret(created.secret)
    assert created.secret[:14] == row.prefix
    stored_text = " ".join(str(getattr(row, f.attname)) for f in ApiKey._meta.fields)
    assert created.secret not in stored_text
    assert created.secret[14:] not in stored_text


def test_two_keys_never_share_a_secret() -> None:
    user = make_user()
    secrets = {api_key_create(user=user).secret for _ in range(20)}
    assert len(secrets) == 20


def test_an_active_key_authenticates_to_its_owner() -> None:
    user = make_user()
    created = make_key(user)
    result = authenticate(created.secret)
    assert result.ok
    assert result.key.user_id == user.pk and result.key.key_id == created.key.pk


@pytest.mark.parametrize(
    ("presented", "refusal"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("hello", Refusal.MALFORMED),
        ("sk-nx-short", Refusal.MALFORMED),
        ("sk-proj-" + "a" * 43, Refusal.MALFORMED),
        ("sk-nx-" + "!" * 43, Refusal.MALFORMED),
        ("sk-nx-" + "a" * 43, Refusal.UNKNOWN),
    ],
)
def test_missing_malformed_and_unknown_secrets_are_refused_with_their_reason(
    presented: str | None, refusal: Refusal
) -> None:
    make_key(make_user())
    result = authenticate(presented)
    assert not result.ok and result.refusal == refusal


def test_revoked_suspended_and_expired_keys_are_refused_each_with_its_reason() -> None:
    user = make_user()
    revoked, suspended, expired = make_key(user), make_key(user), make_key(user)
    api_key_revoke(key=revoked.key)
    api_key_suspend(key=suspended.key)
    ApiKey.objects.filter(pk=expired.key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert authenticate(revoked.secret).refusal == Refusal.REVOKED
    assert authenticate(suspended.secret).refusal == Refusal.SUSPENDED
    assert authenticate(expired.secret).refusal == Refusal.EXPIRED


def test_revoking_a_cached_key_takes_effect_on_the_next_request(
    django_capture_on_commit_callbacks,
) -> None:
    created = make_key(make_user())
    assert authenticate(created.secret).ok  # now cached, locally and shared
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=created.key)
    assert authenticate(created.secret).refusal == Refusal.REVOKED


def test_another_process_stops_accepting_a_revoked_key_once_its_local_copy_expires() -> None:
    created = make_key(make_user())
    assert authenticate(created.secret).ok  # this process now holds a local copy
    # Another process revokes the key: the database and the shared cache change, this
    # process's local copy does not, and lives at most LOCAL_TTL seconds.
    ApiKey.objects.filter(pk=created.key.pk).update(status=ApiKey.Status.REVOKED)
    cache.clear()
    assert authenticate(created.secret).ok
    clock.advance(keycache.LOCAL_TTL + 0.001)
    assert authenticate(created.secret).refusal == Refusal.REVOKED


def test_a_suspended_key_can_be_reactivated_but_a_revoked_one_cannot() -> None:
    user = make_user()
    created = make_key(user)
    api_key_suspend(key=created.key)
    api_key_reactivate(key=created.key)
    keycache.clear_local()
    assert authenticate(created.secret).ok
    api_key_revoke(key=created.key)
    with pytest.raises(KeyStateError):
        api_key_reactivate(key=created.key)


def test_a_key_is_found_by_secret_or_by_its_visible_prefix() -> None:
    created = make_key(make_user())
    assert api_key_find(secret_or_prefix=created.secret) == created.key
    assert api_key_find(secret_or_prefix=created.key.prefix) == created.key
    assert api_key_find(secret_or_prefix="sk-nx-nothing") is None


def test_a_deactivated_users_keys_are_refused_and_work_again_once_reactivated(
    django_capture_on_commit_callbacks,
) -> None:
    user = make_user()
    first, second = make_key(user), make_key(user)
    assert authenticate(first.secret).ok and authenticate(second.secret).ok  # both cached
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()  # as the admin's form, or a shell, does
    assert authenticate(first.secret).refusal == Refusal.ACCOUNT_DISABLED
    assert authenticate(second.secret).refusal == Refusal.ACCOUNT_DISABLED
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = True
        user.save()
    assert authenticate(first.secret).ok and authenticate(second.secret).ok


def test_another_process_stops_accepting_a_deactivated_users_key_within_a_second(
    django_capture_on_commit_callbacks,
) -> None:
    user = make_user()
    created = make_key(user)
    assert authenticate(created.secret).ok  # this process holds a local copy
    mine = dict(keycache._local)
    # Another process deactivates the user: its save drops the shared entries (and its
    # own copies), not this process's local copy, which lives at most LOCAL_TTL.
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()
    keycache._local.update(mine)
    assert authenticate(created.secret).ok
    clock.advance(keycache.LOCAL_TTL + 0.001)
    assert authenticate(created.secret).refusal == Refusal.ACCOUNT_DISABLED


def test_a_login_saving_the_user_does_not_touch_the_key_cache(
    django_assert_num_queries,
) -> None:
    user = make_user()
    created = make_key(user)
    assert authenticate(created.secret).ok
    with django_assert_num_queries(1):  # the UPDATE of last_login, nothing more
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
