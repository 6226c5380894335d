from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from providers import health
from providers.models import AiModel, Provider, ProviderKey, Route
from providers.probe import provider_key_test
from providers.services import catalogue_changed


class ProviderKeyForm(forms.ModelForm):
    # The secret can be set or replaced, never read back.
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the current secret.",
    )

    class Meta:
        model = ProviderKey
        fields = ["label", "secret", "weight", "enabled"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret and not self.instance.pk:
            raise forms.ValidationError("A new key needs its secret.")
        return secret or self.instance.secret

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("enabled"):
            # Enabled again by staff: the automatic notice is over.
            self.instance.disabled_reason = ""
            self.instance.disabled_at = None
        return cleaned


class ProviderKeyInline(admin.TabularInline):
    model = ProviderKey
    form = ProviderKeyForm
    extra = 0
    readonly_fields = ["fingerprint", "last_error", "last_error_at", "disabled_reason"]


class CatalogueAdmin(admin.ModelAdmin):
    """Every save tells the gateway's processes to reload their catalogue snapshot."""

    def save_model(self, request: HttpRequest, obj: object, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        catalogue_changed()

    def save_related(
        self, request: HttpRequest, form: object, formsets: object, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        catalogue_changed()

    def delete_model(self, request: HttpRequest, obj: object) -> None:
        super().delete_model(request, obj)
        catalogue_changed()


@admin.register(Provider)
class ProviderAdmin(CatalogueAdmin):
    list_display = ["name", "kind", "base_url", "enabled", "key_count", "origin"]
    list_filter = ["kind", "enabled", "origin"]
    inlines = [ProviderKeyInline]
    change_list_template = "admin/providers/provider/change_list.html"

    @admin.display(description="keys")
    def key_count(self, provider: Provider) -> int:
        return provider.keys.filter(enabled=True).count()

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("health/", view(self.health_view), name="providers_health"),
            path("health/test/", view(self.test_view), name="providers_health_test"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "disabled_keys": _disabled_keys()}
        return super().changelist_view(request, extra_context)

    def health_view(self, request: HttpRequest) -> HttpResponse:
        """Each upstream key and each route on each key: breaker state, the last
        minutes' error rate and latency, the last error (secrets removed)."""
        keys, routes = health.overview()
        context = {
            **self.admin_site.each_context(request),
            "title": "Upstream health",
            "opts": self.model._meta,
            "keys": keys,
            "routes": routes,
            "minutes": health.STATS_MINUTES,
            "disabled_keys": _disabled_keys(),
        }
        return TemplateResponse(request, "admin/providers/health.html", context)

    def test_view(self, request: HttpRequest) -> HttpResponse:
        """POST key + route: send one tiny real request, show what came back."""
        back = HttpResponseRedirect(reverse("admin:providers_health"))
        if request.method != "POST" or not self.has_change_permission(request):
            return back
        key = get_object_or_404(ProviderKey, pk=request.POST.get("key"))
        route = get_object_or_404(
            Route.objects.select_related("model", "provider"),
            pk=request.POST.get("route"),
            provider_id=key.provider_id,
        )
        probe = provider_key_test(key=key, route=route)
        where = f"{route.model.public_id} via {route.provider.name} key …{key.fingerprint}"
        status = probe.status if probe.status is not None else "no answer"
        text = f"Test of {where}: {status} in {probe.latency_ms} ms: {probe.answer}"
        messages.add_message(request, messages.SUCCESS if probe.ok else messages.ERROR, text)
        return back


def _disabled_keys() -> list[ProviderKey]:
    """Keys the gateway disabled itself, for the notice at the top of the pages."""
    return list(
        ProviderKey.objects.filter(enabled=False)
        .exclude(disabled_reason="")
        .select_related("provider")
        .order_by("-disabled_at")
    )


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0


@admin.register(AiModel)
class AiModelAdmin(CatalogueAdmin):
    list_display = [
        "public_id",
        "type",
        "owned_by",
        "enabled",
        "input_per_mtok",
        "output_per_mtok",
        "markup_percent",
        "origin",
    ]
    list_filter = ["type", "enabled", "owned_by", "origin"]
    search_fields = ["public_id"]
    inlines = [RouteInline]
