"""Every account that already received the signup gift claims its mailbox, so a new
account on the same mailbox gets none."""

from django.db import migrations

from accounts.mailbox import canonical_email


def claim_existing(apps, schema_editor):
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    SignupGiftClaim = apps.get_model("accounts", "SignupGiftClaim")
    granted = (
        LedgerEntry.objects.filter(kind="signup_grant")
        .order_by("created_at", "id")
        .values_list("wallet__user_id", "wallet__user__email")
    )
    seen = set(SignupGiftClaim.objects.values_list("canonical_email", flat=True))
    for user_id, email in granted.iterator():
        mailbox = canonical_email(email)
        if mailbox not in seen:  # the first account to get the gift keeps the claim
            SignupGiftClaim.objects.create(canonical_email=mailbox, user_id=user_id)
            seen.add(mailbox)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_signup_gift_claim"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(claim_existing, migrations.RunPython.noop)]
