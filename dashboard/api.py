"""The management API under /api/ (djangorestframework): a customer's keys, usage,
ledger, stored responses and balance, for scripts. Session or API-key authentication,
paginated and rate limited by settings.REST_FRAMEWORK. Every queryset starts from the
caller's own rows, so another customer's id is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import generics, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from accounts.drf import ApiKeyAuthentication
from accounts.models import ApiKey
from accounts.scopes import key_may_manage
from accounts.services import KeyStateError, api_key_revoke, api_key_update, expiry_in_days
from billing.models import LedgerEntry
from billing.services import wallet_for
from dashboard import selectors
from dashboard.forms import UsageFilterForm
from dashboard.services import (
    EmailNotVerified,
    KeyNameTaken,
    customer_api_key_create,
    key_name_taken,
)
from gateway.models import StoredResponse, UsageRecord
from providers.selectors import unknown_model_ids

# ---- serializers -------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="display_status", read_only=True)
    spend_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="credits, lifetime"
    )
    rpm = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, min_value=1, max_value=3650
    )
    scope = serializers.ChoiceField(
        choices=ApiKey.Scope.choices,
        required=False,
        help_text="inference (default): calls /v1; management: may also manage keys here",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "created_at",
            "last_used_at",
            "expires_at",
            "expires_in_days",
            "revoked_at",
            "rpm",
            "spend_limit",
            "allowed_models",
            "scope",
            "spent",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "spent"]

    def validate_allowed_models(self, value: list[str]) -> list[str]:
        unknown = unknown_model_ids(value)
        if unknown:
            raise ValidationError(f"unknown model ids: {', '.join(unknown)}")
        return list(dict.fromkeys(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        days = attrs.pop("expires_in_days", None)
        if days is not None:
            if attrs.get("expires_at") is not None:
                raise ValidationError("give expires_at or expires_in_days, not both")
            attrs["expires_at"] = expiry_in_days(days)
        return attrs

    def validate_name(self, value: str) -> str:
        request = self.context["request"]
        current = self.instance.pk if isinstance(self.instance, ApiKey) else None
        if value.strip() and key_name_taken(user=request.user, name=value, exclude_id=current):
            raise ValidationError(f"you already have a key named {value.strip()!r}")
        return value.strip()

    def validate_scope(self, value: str) -> str:
        if self.instance is not None:
            raise ValidationError("a key's scope is set when it is created")
        # A key can never mint a management key: that takes a signed-in session.
        if value == ApiKey.Scope.MANAGEMENT and self.context["request"].auth is not None:
            raise PermissionDenied("management keys are created from a signed-in session only")
        return value

    def create(self, validated_data: dict[str, Any]) -> ApiKey:
        user = self.context["request"].user
        try:
            created = customer_api_key_create(user=user, **validated_data)
        except EmailNotVerified as exc:
            raise PermissionDenied(str(exc)) from None
        except KeyNameTaken as exc:
            raise ValidationError({"name": [str(exc)]}) from None
        # Shown in this one response, never again.
        self.context["secret"] = created.secret
        return created.key

    def update(self, instance: ApiKey, validated_data: dict[str, Any]) -> ApiKey:
        # An explicit null removes a limit; an absent field leaves it alone.
        clear = tuple(
            f
            for f in ("rpm", "spend_limit", "expires_at")
            if f in validated_data and validated_data[f] is None
        )
        values = {k: v for k, v in validated_data.items() if v is not None}
        try:
            return api_key_update(key=instance, clear=clear, **values)
        except KeyStateError as exc:
            raise ValidationError(str(exc)) from None

    def to_representation(self, instance: ApiKey) -> dict[str, Any]:
        data = super().to_representation(instance)
        if "secret" in self.context:
            data["secret"] = self.context["secret"]
        return data


class UsageRecordSerializer(serializers.ModelSerializer):
    api_key = serializers.SerializerMethodField()

    class Meta:
        model = UsageRecord
        fields = [
            "request_id",
            "created_at",
            "api_key",
            "endpoint",
            "model",
            "provider",
            "stream",
            "status",
            "error_code",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "units",
            "charge",
            "estimated",
            "latency_ms",
            "ttft_ms",
        ]

    def get_api_key(self, record: UsageRecord) -> dict[str, Any] | None:
        key = record.api_key
        return {"id": key.pk, "prefix": key.prefix, "name": key.name} if key else None


class LedgerEntrySerializer(serializers.ModelSerializer):
    api_key = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "kind",
            "amount",
            "balance_after",
            "reference",
            "description",
            "api_key",
            # For a top-up: what was paid, in the currency's smallest unit (whole đồng,
            # US cents), and for đồng the rate (đồng per US$) and the day it was set.
            "paid_amount",
            "paid_currency",
            "rate",
            "rate_date",
        ]

    def get_api_key(self, entry: LedgerEntry) -> str | None:
        return entry.api_key.prefix if entry.api_key else None


class StoredResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = StoredResponse
        fields = ["response_id", "model", "created_at", "body"]


# ---- views -------------------------------------------------------------------------------


class Authenticated:
    """API keys are tried first so a refused key answers 401 with `WWW-Authenticate:
    Bearer` (DRF takes the header from the first class; sessions have none)."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]


class ManagesKeys(BasePermission):
    """Keys are managed from a signed-in session, or with a key created with the
    management scope; an ordinary key (the kind pasted into tools, the kind that leaks)
    can read the account but cannot list, create, change or revoke keys."""

    message = (
        "this API key may only call /v1 and read this account: managing keys needs a "
        "signed-in session or a key created with the management scope"
    )

    def has_permission(self, request: Request, view: object) -> bool:
        if request.auth is None:  # a session
            return True
        return key_may_manage(key_id=request.auth.key_id)


class KeysAuthenticated(Authenticated):
    permission_classes = [IsAuthenticated, ManagesKeys]


class ApiRoot(Authenticated, APIView):
    """nexai management API. Authenticate with your dashboard session or with
    `Authorization: Bearer sk-nx-...`. Amounts are integers in credits
    (1,000,000 credits = US$1)."""

    # The index is documentation: anyone may read which endpoints exist.
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return reverse(f"api:{name}", request=request)

        return Response(
            {
                "balance": link("balance"),
                "keys": link("keys"),
                "usage": link("usage"),
                "ledger": link("ledger"),
                "responses": link("responses"),
            }
        )


class BalanceView(Authenticated, APIView):
    """Your balance and lifetime spend, in credits."""

    def get(self, request: Request) -> Response:
        wallet = wallet_for(user=request.user)
        return Response(
            {
                "balance": wallet.balance,
                "total_spent": wallet.total_spent,
                "currency": "credits",
                "plan": "paid" if wallet.paid else "free",
                "last_updated": wallet.updated_at,
            }
        )


class KeyList(KeysAuthenticated, generics.ListCreateAPIView):
    """Your API keys. POST creates one; its `secret` is in that response only."""

    serializer_class = ApiKeySerializer

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_keys(user=self.request.user)


class KeyDetail(KeysAuthenticated, generics.RetrieveUpdateDestroyAPIView):
    """One key. PATCH renames or changes limits (null removes a limit); DELETE revokes
    it for good (the record stays, for its usage history)."""

    serializer_class = ApiKeySerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_keys(user=self.request.user)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(key=instance)


class KeyRevoke(KeysAuthenticated, generics.GenericAPIView):
    """POST revokes the key; revoking twice is harmless."""

    serializer_class = ApiKeySerializer

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_keys(user=self.request.user)

    def post(self, request: Request, pk: int) -> Response:
        key = api_key_revoke(key=self.get_object())
        return Response(self.get_serializer(key).data, status=status.HTTP_200_OK)


class UsageList(Authenticated, generics.ListAPIView):
    """Your requests, newest first. Filters: `key` (id), `model`, `status` ("ok",
    "error" or a code), `date_from`, `date_to` (YYYY-MM-DD, UTC, inclusive)."""

    serializer_class = UsageRecordSerializer

    def get_queryset(self) -> QuerySet[UsageRecord]:
        user = self.request.user
        params = self.request.query_params
        if not any(params.get(f) for f in ("key", "model", "status", "date_from", "date_to")):
            return selectors.usage_filtered(user=user)
        form = UsageFilterForm(params, user=user, models=selectors.models_used(user=user))
        if not form.is_valid():
            raise ValidationError(form.errors)
        return selectors.usage_filtered(user=user, **form.filters())


class UsageDetail(Authenticated, generics.RetrieveAPIView):
    serializer_class = UsageRecordSerializer
    lookup_field = "request_id"

    def get_queryset(self) -> QuerySet[UsageRecord]:
        return selectors.usage_filtered(user=self.request.user)


class LedgerList(Authenticated, generics.ListAPIView):
    """Every change of your balance: kind, amount (credits), balance after, reference;
    for a top-up, what was paid (amount, currency, and the rate for đồng)."""

    serializer_class = LedgerEntrySerializer

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        return selectors.ledger_entries(user=self.request.user)


class ResponseList(Authenticated, generics.ListAPIView):
    """Responses stored by `POST /v1/responses` with `store: true`."""

    serializer_class = StoredResponseSerializer

    def get_queryset(self) -> QuerySet[StoredResponse]:
        return selectors.stored_responses(user=self.request.user)


class ResponseDetail(Authenticated, generics.RetrieveAPIView):
    serializer_class = StoredResponseSerializer
    lookup_field = "response_id"

    def get_queryset(self) -> QuerySet[StoredResponse]:
        return selectors.stored_responses(user=self.request.user)
