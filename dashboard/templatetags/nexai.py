"""Template filters for money and for keeping query strings across pagination."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.conf import settings
from django.http import QueryDict
from django.utils.timesince import timesince
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from billing.exchange import current_rate, format_vnd
from billing.money import cents_to_usd, credits_to_usd, credits_to_usd_brief
from dashboard.errors import error_summary as error_summary_of
from dashboard.errors import error_text

register = template.Library()


@register.filter
def usd(credits: int | None) -> str:
    """Exact dollars for a number of credits: "$4.998765", "$5.00"."""
    return "" if credits is None else credits_to_usd(credits)


@register.filter
def money(credits: int | None) -> str:
    """Headline and table figures: "$52.04", "$0.253" (see credits_to_usd_brief)."""
    return "" if credits is None else credits_to_usd_brief(credits)


@register.filter
def dong(credits: int | None) -> str:
    """What credits are worth in đồng at the operator's rate, "≈ 1.270.000 ₫", for the
    Vietnamese interface (empty in English, or when no rate is set)."""
    rate = current_rate()
    if credits is None or rate is None or not (get_language() or "").startswith("vi"):
        return ""
    vnd = rate.vnd_for(int(credits))
    if vnd == 0 and credits:
        return "< 1 ₫"
    return "≈ " + format_vnd(vnd)


@register.filter
def vnd(amount: int | None) -> str:
    """Whole đồng as the interface's language writes them: "100.000 ₫" / "100,000 ₫"."""
    return "" if amount is None else format_vnd(int(amount))


@register.filter
def ago(value: datetime | None) -> str:
    """ "3 hours" rather than "3 hours, 12 minutes": one unit is enough in a table."""
    return "" if value is None else timesince(value, depth=1)


@register.filter
def cents(value: int) -> str:
    return cents_to_usd(value)


@register.filter
def signed_credits(value: int) -> str:
    return f"{value:+,}"


@register.filter
def credits(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@register.simple_tag
def query_with(query: QueryDict, **changes: object) -> str:
    """The current query string with some parameters replaced (pagination links keep
    the filters)."""
    params = query.copy()
    for name, value in changes.items():
        params[name] = str(value)
    return params.urlencode()


@register.filter
def usd_short(credits: int | None) -> str:
    """ "$5" for whole dollars, "$5.50" otherwise: for headlines and buttons."""
    if credits is None:
        return ""
    text = credits_to_usd(credits, places=2)
    return text.removesuffix(".00")


@register.simple_tag
def signup_gift() -> str:
    return usd_short(settings.NEXAI_SIGNUP_CREDITS)


@register.simple_tag
def image_prices(model: object) -> str:
    """An image model's price: one figure, or one per size."""
    from django.utils.html import format_html, format_html_join
    from django.utils.safestring import mark_safe

    prices = getattr(model, "per_image", None)
    if prices is None:
        return "—"
    if isinstance(prices, dict):
        return format_html_join(
            mark_safe("<br>"),
            "{} <span class='muted small'>{}</span>",
            ((credits_to_usd(int(v)), size) for size, v in prices.items()),
        )
    return format_html(
        "{} <span class='muted small'>{}</span>", credits_to_usd(int(prices)), _("/ image")
    )


@register.filter
def error_words(record: object) -> str:
    """A failed request's error in words the customer can act on."""
    return error_text(code=getattr(record, "error_code", ""), status=getattr(record, "status", 0))


@register.filter
def error_summary(record: object) -> str:
    """A failed request's error in a few words, for tables."""
    return error_summary_of(
        code=getattr(record, "error_code", ""), status=getattr(record, "status", 0)
    )


@register.simple_tag
def localtime_tag(value: datetime | None, style: str = "long") -> str:
    """A <time> the page's script rewrites in the browser's own time zone; the text
    inside (UTC) is what shows without script."""
    from django.utils.dateformat import format as date_format
    from django.utils.html import format_html
    from django.utils.timezone import localtime
    from django.utils.translation import pgettext

    if value is None:
        return ""
    formats = {
        "short": pgettext("date format", "M j, H:i"),
        "long": pgettext("date format", "M j, H:i:s"),
        "day": pgettext("date format", "M j, Y H:i"),
    }
    utc = localtime(value, timezone=UTC)
    return format_html(
        '<time datetime="{}" data-style="{}">{} UTC</time>',
        utc.isoformat(),
        style,
        date_format(utc, formats.get(style, formats["long"])),
    )
