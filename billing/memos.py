"""Each customer's bank-transfer memo, and reading it back out of what a bank sends.

A memo is "NX", six random characters and a check character, e.g. NX7K3QM2P. The
characters are Crockford's base 32 (digits and letters without I, L, O, U), so what a
customer reads aloud or types in lower case still means one thing; O is read as 0 and
I or L as 1. The check character (Luhn mod 32) catches every single mistyped character
and every swap of two neighbours but 0 with Z, so a typo lands in the staff queue
instead of in a stranger's wallet.

Banks pass the memo on inside their own text ("MBVCB.3278907687.NX7K3QM2P.CT tu ...")
and customers add spaces or dashes ("nx 7k3 qm2p"): the reader looks for NX followed by
seven characters with any such separators between them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from accounts.models import User
from billing.models import TransferMemo

PREFIX = "NX"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 6
_VALUE = {char: i for i, char in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# NX, then seven characters, each possibly after spaces, dots, dashes or underscores.
_CANDIDATE = re.compile(rf"NX((?:[\s._-]*[0-9A-Z]){{{BODY_LENGTH + 1}}})")


def check_character(body: str) -> str:
    """The Luhn mod 32 check character of `body`."""
    total, factor = 0, 2
    for char in reversed(body):
        addend = factor * _VALUE[char]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def is_valid(code: str) -> bool:
    """True for "NX" + body + its check character."""
    body = code.removeprefix(PREFIX)
    if not code.startswith(PREFIX) or len(body) != BODY_LENGTH + 1:
        return False
    if any(char not in _VALUE for char in body):
        return False
    return check_character(body[:-1]) == body[-1]


def memo_for(*, user: User) -> str:
    """The customer's memo, made the first time it is asked for and the same ever after."""
    existing = TransferMemo.objects.filter(user=user).values_list("code", flat=True).first()
    if existing:
        return existing
    for _ in range(10):
        body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
        code = PREFIX + body + check_character(body)
        try:
            with transaction.atomic():
                return TransferMemo.objects.create(user=user, code=code).code
        except IntegrityError:
            # Another request made this user's memo first, or (1 in a billion) the code
            # is taken: read it back, or try another.
            existing = TransferMemo.objects.filter(user=user).values_list("code", flat=True).first()
            if existing:
                return existing
    raise RuntimeError("could not find a free transfer memo")


@dataclass(frozen=True)
class Reading:
    """What a transfer's text says: the valid memos in it, and NX-codes that fail
    their check character (a typo)."""

    valid: tuple[str, ...]
    broken: tuple[str, ...]


def read(*texts: str) -> Reading:
    """Every NX-code in `texts` (SePay's payment code, the transfer's content)."""
    valid: list[str] = []
    broken: list[str] = []
    for text in texts:
        upper = (text or "").upper()
        for start in [m.start() for m in re.finditer("NX", upper)]:
            match = _CANDIDATE.match(upper, start)
            if not match:
                continue
            code = PREFIX + re.sub(r"[\s._-]", "", match.group(1)).translate(_ALIASES)
            target = valid if is_valid(code) else broken
            if code not in target:
                target.append(code)
    return Reading(valid=tuple(valid), broken=tuple(broken))
