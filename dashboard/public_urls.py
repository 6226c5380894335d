"""Public pages and the account pages, without a namespace: Django's auth views and
settings.LOGIN_URL expect the plain names (login, password_reset_done...)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, re_path, reverse_lazy

from dashboard import views

urlpatterns = [
    # The app serves its own few static files (CSS, JS, admin's), as runserver does,
    # so any ASGI server works without a separate file server; a proxy or CDN in front
    # of STATIC_URL can take over in a large deployment.
    re_path(rf"^{settings.STATIC_URL.strip('/')}/(?P<path>.+)$", views.static_file),
    path("", views.home, name="home"),
    path("models/", views.pricing, name="pricing"),
    path("models/<path:model_id>/", views.model_detail, name="model_detail"),
    path("docs/", views.quickstart, name="quickstart"),
    path("docs/api/", views.api_reference, name="api_reference"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("verify/resend/", views.verify_resend, name="verify_resend"),
    path("verify/<str:token>/", views.verify_email, name="verify_email"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            success_url=reverse_lazy("password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
