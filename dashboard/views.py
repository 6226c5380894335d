"""Server-rendered pages: public (landing, pricing, quickstart), sign-up and
verification, and the customer's dashboard. Views stay thin: reads through
dashboard.selectors, writes through the services."""

from __future__ import annotations

import mimetypes
import os
import posixpath
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import throttle
from accounts.forms import ThrottledAuthenticationForm, ThrottledPasswordResetForm
from accounts.models import ApiKey
from accounts.services import KeyStateError, api_key_revoke, api_key_update
from billing import rails, stripe_topups
from billing.services import wallet_for
from dashboard import abuse, apireference, selectors
from dashboard.capabilities import model_capabilities
from dashboard.charts import spend_chart
from dashboard.errors import error_text
from dashboard.forms import KeyForm, SignupForm, TopupForm, UsageFilterForm
from dashboard.plans import plan_for
from dashboard.services import (
    EmailNotVerified,
    KeyNameTaken,
    VerificationError,
    customer_api_key_create,
    customer_signup,
    email_verification_send,
    email_verify,
    gift_received,
)
from dashboard.snippets import model_snippets, quickstart_snippets

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
            "can_top_up": stripe_topups.is_configured(),
        },
    )


def pricing(request: HttpRequest) -> HttpResponse:
    """The model catalogue: search by id or maker, filter by type or capability, sort."""
    models = selectors.public_models()
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("type", "")
    capability = request.GET.get("can", "")
    sort = request.GET.get("sort", "name")
    return render(
        request,
        "public/pricing.html",
        {
            "groups": selectors.catalogue_groups(
                models=models, query=query, kind=kind, capability=capability, sort=sort
            ),
            "models": models,
            "q": query,
            "type": kind,
            "can": capability,
            "sort": sort,
            "types": sorted({(m.type, m.get_type_display()) for m in models}),
            "filtered": bool(query or kind or capability),
        },
    )


def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    model = next((m for m in selectors.public_models() if m.public_id == model_id), None)
    if model is None:
        raise Http404(model_id)
    api_base = _api_base(request)
    return render(
        request,
        "public/model_detail.html",
        {
            "m": model,
            "caps": model_capabilities(model),
            "snippets": model_snippets(api_base=api_base, model=model),
        },
    )


def api_reference(request: HttpRequest) -> HttpResponse:
    """The /v1 reference, built from the OpenAPI schema the gateway publishes, with the
    rules every endpoint shares (errors, limits, streaming, media, idempotency)."""
    return render(
        request,
        "public/api_reference.html",
        {
            "api_base": _api_base(request),
            "endpoints": apireference.endpoints(),
            "errors": apireference.ERRORS,
            "free_rpm": settings.NEXAI_FREE_RPM,
            "paid_rpm": settings.NEXAI_PAID_RPM,
            "can_top_up": rails.any_rail(),
            "support_email": settings.NEXAI_SUPPORT_EMAIL,
        },
    )


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
            "free_rpm": settings.NEXAI_FREE_RPM,
            "paid_rpm": settings.NEXAI_PAID_RPM,
        },
    )


# ---- sign-up and verification -----------------------------------------------------------


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:overview")
    form = SignupForm(request.POST or None)
    ip = throttle.client_ip(request)
    if request.method == "POST" and form.is_valid():
        wait = throttle.locked_for("signup-ip", ip)
        if wait:
            form.add_error(
                None,
                _("Too many sign-ups from your network. Try again in %(minutes)s minutes.")
                % {"minutes": throttle.minutes(wait)},
            )
        elif not abuse.captcha_passed(token=request.POST.get("cf-turnstile-response", ""), ip=ip):
            form.add_error(None, _("Please confirm you are not a robot, then try again."))
        else:
            throttle.attempt_record("signup-ip", ip)
            email = form.cleaned_data["email"]
            customer_signup(
                email=email,
                password=form.cleaned_data["password"],
                base_url=request.build_absolute_uri("/"),
            )
            # The same answer whether or not the address was taken; this browser may log
            # in from the link it is about to receive.
            request.session["signup_email"] = email
            return redirect("signup_sent")
    return render(
        request,
        "registration/signup.html",
        {
            "form": form,
            "captcha_site_key": settings.NEXAI_CAPTCHA_SITE_KEY,
            "captcha_script_url": settings.NEXAI_CAPTCHA_SCRIPT_URL,
        }
        if abuse.captcha_enabled()
        else {"form": form},
    )


def signup_sent(request: HttpRequest) -> HttpResponse:
    email = request.session.get("signup_email")
    if not email:
        return redirect("signup")
    return render(request, "registration/signup_sent.html", {"email": email})


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = email_verify(token=token)
    except VerificationError as exc:
        return render(request, "registration/verify_failed.html", {"error": str(exc)}, status=400)
    if gift_received(user=user):
        messages.success(
            request, _("Your email address is verified and your welcome credits are in.")
        )
    else:
        messages.success(request, _("Your email address is verified. You can create API keys."))
        messages.info(
            request, _("This mailbox already received the welcome credits on another account.")
        )
    # The browser that signed up (and set the password) is logged in at once; a link
    # opened anywhere else asks for the password.
    if request.session.get("signup_email") == user.email and not request.user.is_authenticated:
        request.session.pop("signup_email", None)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if request.user.is_authenticated and request.user.pk == user.pk:
        return redirect("dashboard:overview")
    return redirect(f"{reverse('login')}?next={reverse('dashboard:overview')}")


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm
    email_template_name = "emails/password_reset.txt"
    subject_template_name = "emails/password_reset_subject.txt"

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


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


def _overview_figures(request: HttpRequest) -> dict:
    """Everything on the overview's cards, for the page and for its live refresh."""
    series = selectors.daily_series(user=request.user)
    wallet = wallet_for(user=request.user)
    return {
        "wallet": wallet,
        "plan": plan_for(wallet=wallet),
        "capacity": selectors.concurrent_capacity(user=request.user, balance=wallet.balance),
        "chart": spend_chart(series),
        "chart_narrow": spend_chart(series, width=360, height=220, label_every=10),
        "month_requests": sum(p.requests for p in series),
        "month_spend": sum(p.charge for p in series),
        "recent": selectors.recent_requests(user=request.user),
        "active_keys": selectors.api_keys(user=request.user)
        .filter(status=ApiKey.Status.ACTIVE)
        .count(),
    }


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/overview.html",
        {"section": "overview", "api_base": _api_base(request), **_overview_figures(request)},
    )


@login_required
def overview_live(request: HttpRequest) -> JsonResponse:
    """The overview's cards, re-rendered: the page asks for them when the websocket
    says the balance changed (a request was charged, credits arrived)."""
    context = {"section": "overview", **_overview_figures(request)}
    parts = ("cards", "chart", "recent")
    return JsonResponse(
        {
            part: render_to_string(f"dashboard/_overview_{part}.html", context, request=request)
            for part in parts
        }
    )


@login_required
def keys(request: HttpRequest) -> HttpResponse:
    form = KeyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            created = customer_api_key_create(
                user=request.user, scope=form.chosen_scope(), **form.limits()
            )
        except EmailNotVerified as exc:
            messages.error(request, str(exc))
            return redirect("dashboard:keys")
        except KeyNameTaken as exc:
            form.add_error("name", str(exc))
        else:
            # Post/redirect/get: the secret waits in the session for the next page, which
            # shows it once; reloading that page cannot create a second key.
            request.session["new_key"] = {"id": created.key.pk, "secret": created.secret}
            return redirect("dashboard:key_created")
    wallet = wallet_for(user=request.user)
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
            "plan": plan_for(wallet=wallet),
        },
    )


@login_required
def key_created(request: HttpRequest) -> HttpResponse:
    new = request.session.pop("new_key", None)
    key = new and selectors.api_keys(user=request.user).filter(pk=new["id"]).first()
    if not key:
        messages.info(request, _("A key's secret is shown only once, right after it is created."))
        return redirect("dashboard:keys")
    response = render(
        request,
        "dashboard/key_created.html",
        {"section": "keys", "key": key, "secret": new["secret"], "api_base": _api_base(request)},
    )
    # Neither the browser's cache nor its back button may show the secret again.
    response.headers["Cache-Control"] = "no-store"
    return response


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


def _date_presets(request: HttpRequest) -> list[dict]:
    """Quick ranges (UTC days, like the filters), each keeping the other filters."""
    today = timezone.now().date()
    ranges = [
        (_("Today"), today, today),
        (_("Last 7 days"), today - timedelta(days=6), today),
        (_("Last 30 days"), today - timedelta(days=29), today),
        (_("This month"), today.replace(day=1), today),
    ]
    presets = []
    for label, start, end in ranges:
        query = request.GET.copy()
        query.pop("page", None)
        query["date_from"], query["date_to"] = start.isoformat(), end.isoformat()
        active = (request.GET.get("date_from"), request.GET.get("date_to")) == (
            start.isoformat(),
            end.isoformat(),
        )
        presets.append({"label": label, "query": query.urlencode(), "active": active})
    return presets


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
            "presets": _date_presets(request),
        },
    )


@login_required
def usage_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    record = get_object_or_404(selectors.usage_filtered(user=request.user), request_id=request_id)
    return render(
        request,
        "dashboard/usage_detail.html",
        {
            "section": "usage",
            "record": record,
            "breakdown": selectors.cost_breakdown(record=record),
            "error_text": error_text(code=record.error_code, status=record.status),
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
            "rails": rails.rails_offered(),
            "plan": plan_for(wallet=wallet_for(user=request.user)),
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
