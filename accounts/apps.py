from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the models are loaded.
        from accounts import keycache

        post_save.connect(
            keycache.user_saved, sender=self.get_model("User"), dispatch_uid="keycache"
        )
