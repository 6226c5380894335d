from __future__ import annotations

from providers.models import AiModel


def unknown_model_ids(model_ids: list[str]) -> list[str]:
    """The ids in `model_ids` that name no model in the catalogue, in order."""
    known = set(AiModel.objects.filter(public_id__in=model_ids).values_list("public_id", flat=True))
    return [m for m in model_ids if m not in known]
