"""Server-rendered pages: public (landing, pricing, quickstart), sign-up and
verification, and the customer's dashboard. Views stay thin: reads through
dashboard.selectors, writes through the services."""

from __future__ import annotations

import mimetypes
import os
import posixpath

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import ApiKey
from accounts.services import KeyStateError, api_key_revoke, api_key_update
from billing import stripe_topups
from billing.services import wallet_for
from dashboard import selectors
from dashboard.charts import spend_chart
from dashboard.forms import KeyForm, SignupForm, TopupForm, UsageFilterForm
from dashboard.services import (
    EmailNotVerified,
    SignupError,
    VerificationError,
    customer_api_key_create,
    customer_signup,
    email_verification_send,
    email_verify,
)
from dashboard.snippets import quickstart_snippets

PAGE_SIZE = 50


def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """A file from STATICFILES_DIRS or an app's static/ (no collectstatic needed),
    found as staticfiles' own view finds it, whose finders stay inside those folders.
    Read whole: these files are small, and a streamed file response would make the
    async server iterate a synchronous file."""
    normalized = posixpath.normpath(path).lstrip("/")
    found = None if normalized.startswith("..") else finders.find(normalized)
    if not found or not os.path.isfile(found):
        raise Http404(path)
    content_type, encoding = mimetypes.guess_type(found)
    with open(found, "rb") as handle:
        response = HttpResponse(
            handle.read(), content_type=content_type or "application/octet-stream"
        )
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# ---- public pages ------------------------------------------------------------------------


def _api_base(request: HttpRequest) -> str:
    # The address this very server was reached at, so snippets work as pasted.
    return request.build_absolute_uri("/v1")


def _featured(models: list, count: int = 6) -> list:
    """A taste of the catalogue: chat models taking turns among their makers."""
    by_owner: dict[str, list] = {}
    for model in models:
        if model.type == "chat":
            by_owner.setdefault(model.owned_by, []).append(model)
    picked: list = []
    while len(picked) < count and any(by_owner.values()):
        for queue in by_owner.values():
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def home(request: HttpRequest) -> HttpResponse:
    models = selectors.public_models()
    return render(
        request,
        "home.html",
        {
            "api_base": _api_base(request),
            "model_count": len(models),
            "featured": _featured(models),
            "owners": sorted({m.owned_by for m in models if m.owned_by}),
        },
    )


def pricing(request: HttpRequest) -> HttpResponse:
    models = selectors.public_models()
    groups: dict[str, list] = {}
    for model in models:
        groups.setdefault(model.get_type_display(), []).append(model)
    return render(request, "public/pricing.html", {"groups": groups, "models": models})


def quickstart(request: HttpRequest) -> HttpResponse:
    chat = selectors.public_models(types=["chat"])
    model = chat[0].public_id if chat else "gpt-4o-mini"
    api_base = _api_base(request)
    return render(
        request,
        "public/quickstart.html",
        {
            "api_base": api_base,
            "model": model,
            "snippets": quickstart_snippets(api_base=api_base, model=model),
        },
    )


# ---- sign-up and verification -----------------------------------------------------------


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:overview")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = customer_signup(
                email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except SignupError as exc:
            form.add_error("email", str(exc))
        else:
            email_verification_send(user=user, base_url=request.build_absolute_uri("/"))
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! We sent a verification link to %s.") % user.email)
            return redirect("dashboard:overview")
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = email_verify(token=token)
    except VerificationError as exc:
        return render(request, "registration/verify_failed.html", {"error": str(exc)}, status=400)
    messages.success(request, _("Your email address is verified and your welcome credits are in."))
    if request.user.is_authenticated and request.user.pk == user.pk:
        return redirect("dashboard:overview")
    return redirect(f"{reverse('login')}?next={reverse('dashboard:overview')}")


@login_required
@require_POST
def verify_resend(request: HttpRequest) -> HttpResponse:
    if email_verification_send(user=request.user, base_url=request.build_absolute_uri("/")):
        messages.success(request, _("We sent a new verification link to %s.") % request.user.email)
    elif not request.user.email_verified:
        messages.info(request, _("A link was sent a moment ago; check your inbox."))
    back = request.POST.get("next", "")
    # Only back to a page of this site: never an open redirect.
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("dashboard:overview")
    return redirect(back)


# ---- dashboard ---------------------------------------------------------------------------


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    series = selectors.daily_series(user=request.user)
    return render(
        request,
        "dashboard/overview.html",
        {
            "section": "overview",
            "wallet": wallet_for(user=request.user),
            "chart": spend_chart(series),
            "chart_narrow": spend_chart(series, width=360, height=220, label_every=10),
            "month_requests": sum(p.requests for p in series),
            "month_spend": sum(p.charge for p in series),
            "recent": selectors.recent_requests(user=request.user),
            "active_keys": selectors.api_keys(user=request.user)
            .filter(status=ApiKey.Status.ACTIVE)
            .count(),
            "api_base": _api_base(request),
        },
    )


@login_required
def keys(request: HttpRequest) -> HttpResponse:
    form = KeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = customer_api_key_create(user=request.user, **form.limits())
        except EmailNotVerified as exc:
            messages.error(request, str(exc))
            return redirect("dashboard:keys")
        return render(
            request,
            "dashboard/key_created.html",
            {
                "section": "keys",
                "key": created.key,
                "secret": created.secret,
                "api_base": _api_base(request),
            },
        )
    return render(
        request,
        "dashboard/keys.html",
        {
            "section": "keys",
            # Revoked keys are history: listed last.
            "keys": sorted(
                selectors.api_keys(user=request.user), key=lambda k: k.status == "revoked"
            ),
            "form": form,
            "now": timezone.now(),
        },
    )


def _own_key(request: HttpRequest, key_id: int) -> ApiKey:
    # Another customer's key id is simply not found.
    return get_object_or_404(selectors.api_keys(user=request.user), pk=key_id)


@login_required
def key_edit(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _own_key(request, key_id)
    form = KeyForm(request.POST or None, key=key)
    if request.method == "POST" and form.is_valid():
        limits = form.limits()
        cleared = tuple(f for f in ("rpm", "spend_limit", "expires_at") if limits[f] is None)
        try:
            api_key_update(key=key, clear=cleared, **limits)
        except KeyStateError:
            messages.error(request, _("A revoked key cannot be changed."))
            return redirect("dashboard:keys")
        messages.success(request, _("Key “%s” saved.") % (key.name or key.prefix))
        return redirect("dashboard:keys")
    return render(request, "dashboard/key_edit.html", {"section": "keys", "key": key, "form": form})


@login_required
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _own_key(request, key_id)
    if request.method == "POST":
        api_key_revoke(key=key)
        messages.success(request, _("Key %s… is revoked.") % key.prefix)
        return redirect("dashboard:keys")
    return render(request, "dashboard/key_revoke.html", {"section": "keys", "key": key})


def _usage_records(request: HttpRequest) -> tuple[UsageFilterForm, object]:
    form = UsageFilterForm(
        request.GET or None,
        user=request.user,
        models=selectors.models_used(user=request.user),
    )
    records = selectors.usage_filtered(user=request.user, **(form.filters() if request.GET else {}))
    return form, records


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    form, records = _usage_records(request)
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/usage.html",
        {
            "section": "usage",
            "form": form,
            "page": page,
            "totals": selectors.model_totals(records=records),
            "query": request.GET,
        },
    )


@login_required
def usage_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, records = _usage_records(request)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        selectors.usage_csv_lines(records=records),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="nexai-usage-{stamp}.csv"'},
    )


@login_required
def billing(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    entries = selectors.ledger_entries(user=request.user, kind=kind)
    outcome = request.GET.get("topup")
    if outcome == "success":
        messages.success(
            request,
            _(
                "Payment received. Your credits appear as soon as Stripe confirms it, "
                "usually within seconds."
            ),
        )
    elif outcome == "cancelled":
        messages.info(request, _("Top-up cancelled; nothing was charged."))
    return render(
        request,
        "dashboard/billing.html",
        {
            "section": "billing",
            "wallet": wallet_for(user=request.user),
            "page": Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page")),
            "form": TopupForm(),
            "stripe_enabled": stripe_topups.is_configured(),
            "query": request.GET,
            "kind": kind if kind in ("usage", "credits") else "",
        },
    )


@login_required
@require_POST
def topup(request: HttpRequest) -> HttpResponse:
    if not stripe_topups.is_configured():
        messages.error(request, _("Card payments are not available yet."))
        return redirect("dashboard:billing")
    form = TopupForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("dashboard:billing")
    back = request.build_absolute_uri(reverse("dashboard:billing"))
    try:
        url = stripe_topups.topup_checkout_create(
            user=request.user,
            amount_usd_cents=form.cleaned_data["amount_cents"],
            success_url=f"{back}?topup=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{back}?topup=cancelled",
        )
    except stripe_topups.TopupAmountError:
        messages.error(request, _("Top-ups are between $5 and $1,000."))
        return redirect("dashboard:billing")
    except stripe_topups.stripe.StripeError:
        messages.error(
            request, _("The payment page could not be opened. Please try again in a minute.")
        )
        return redirect("dashboard:billing")
    return redirect(url)
