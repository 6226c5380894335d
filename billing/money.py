"""Showing money. Credits are integers (1 credit = US$0.000001) and stay integers here:
dollars are built with divmod, never with floats, so what a customer reads is exact."""

from __future__ import annotations

CREDITS_PER_USD = 1_000_000
CREDITS_PER_CENT = 10_000
# A token component's exact cost is tokens * credits-per-million: millionths of a credit.
MICRO_CREDITS_PER_USD = CREDITS_PER_USD * 1_000_000


def credits_to_usd(credits: int, *, places: int | None = None) -> str:
    """ "$4.998765" for 4,998,765 credits. Without `places` the amount is exact: at least two
    decimals and as many more as it needs (a price of 75,000 credits is "$0.075"). With
    `places` it is cut toward zero to that many decimals (for compact figures)."""
    sign = "-" if credits < 0 else ""
    dollars, micros = divmod(abs(int(credits)), CREDITS_PER_USD)
    fraction = f"{micros:06d}"
    fraction = fraction.rstrip("0").ljust(2, "0") if places is None else fraction[:places]
    text = f"{dollars:,}" + (f".{fraction}" if fraction else "")
    return f"{sign}${text}"


def cents_to_usd(cents: int) -> str:
    dollars, rest = divmod(int(cents), 100)
    return f"${dollars:,}.{rest:02d}"


def credits_to_usd_brief(credits: int) -> str:
    """For headlines and table cells: cents from US$1 up ("$52.04", cut toward zero, so a
    balance is never shown higher than it is), and three significant digits below that
    ("$0.253", "$0.000785"), where cents would hide what a request cost."""
    credits = int(credits)
    if abs(credits) >= CREDITS_PER_USD or credits == 0:
        return credits_to_usd(credits, places=2)
    sign = "-" if credits < 0 else ""
    digits = str(abs(credits))
    kept = digits[:3] + "0" * (len(digits) - 3) if len(digits) > 3 else digits
    return sign + credits_to_usd(int(kept))


def micro_credits_to_usd(micro_credits: int) -> str:
    """ "$0.0564258" for 56,425,800,000 millionths of a credit: the exact cost of one line
    of a charge (tokens times a price per million), before the charge rounds its total
    up to whole credits. At least two decimals, as many more as it needs."""
    sign = "-" if micro_credits < 0 else ""
    dollars, fraction = divmod(abs(int(micro_credits)), MICRO_CREDITS_PER_USD)
    digits = f"{fraction:012d}".rstrip("0").ljust(2, "0")
    return f"{sign}${dollars:,}.{digits}"


def usd_to_credits(text: str) -> int:
    """ "10", "10.5", "-0.000001", "$1,250.00" typed by staff, to credits, exactly: the
    digits are read as text, never through a float. Raises ValueError for anything else
    (more than six decimals would be a fraction of a credit)."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "")
    sign = -1 if cleaned.startswith("-") else 1
    cleaned = cleaned.lstrip("+-")
    whole, _, fraction = cleaned.partition(".")
    if (
        not (whole or fraction)
        or not (whole or "0").isdigit()
        or (fraction and not fraction.isdigit())
    ):
        raise ValueError(f"{text!r} is not an amount in US$")
    if len(fraction) > 6:
        raise ValueError("US$ amounts have at most six decimals (one credit is US$0.000001)")
    return sign * (int(whole or "0") * CREDITS_PER_USD + int(fraction.ljust(6, "0") or "0"))


def usd_and_credits(credits: int) -> str:
    """ "$10.00 (10,000,000 credits)": what staff read wherever money is shown."""
    return f"{credits_to_usd(credits)} ({int(credits):,} credits)"
