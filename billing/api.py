"""`POST /api/redeem/ {"code": "NX-..."}`: redeem a code from a script (session or API
key authentication, like the rest of the management API)."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.money import credits_to_usd
from billing.redemptions import RedeemError, TooManyAttempts, code_redeem


class RedeemInput(serializers.Serializer):
    code = serializers.CharField(max_length=40)


class RedeemView(APIView):
    def post(self, request: Request) -> Response:
        data = RedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            done = code_redeem(
                user=request.user,  # type: ignore[arg-type]
                code=data.validated_data["code"],
                ip=request.META.get("REMOTE_ADDR", ""),
            )
        except TooManyAttempts as exc:
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.retry_after)},
            )
        except RedeemError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "code": done.code,
                "credits": done.value,
                "amount_usd": credits_to_usd(done.value),
                "balance": done.entry.balance_after,
                "ledger_entry": done.entry.pk,
                "reference": done.entry.reference,
            },
            status=status.HTTP_201_CREATED,
        )
