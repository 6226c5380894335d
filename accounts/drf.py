"""API-key authentication for the management API (djangorestframework)."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.keycache import authenticate
from accounts.models import User


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, object] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        result = authenticate(header[7:].strip())
        if not result.ok:
            raise exceptions.AuthenticationFailed(f"API key refused: {result.refusal}")
        user = User.objects.filter(pk=result.key.user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("API key refused: inactive account")
        return user, result.key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
