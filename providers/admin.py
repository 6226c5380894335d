from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from providers.models import AiModel, Provider, ProviderKey, Route
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
        fields = ["label", "secret", "weight", "enabled", "cooldown_until"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret and not self.instance.pk:
            raise forms.ValidationError("A new key needs its secret.")
        return secret or self.instance.secret


class ProviderKeyInline(admin.TabularInline):
    model = ProviderKey
    form = ProviderKeyForm
    extra = 0
    readonly_fields = ["fingerprint", "last_error", "last_error_at"]


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

    @admin.display(description="keys")
    def key_count(self, provider: Provider) -> int:
        return provider.keys.filter(enabled=True).count()


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
