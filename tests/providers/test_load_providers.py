from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from providers.models import AiModel, Provider, ProviderKey, Route

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "providers.example.yaml"
ENV = {
    name: f"secret-for-{name.lower()}"
    for name in [
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DEEPSEEK_API_KEY",
        "XAI_API_KEY",
        "OPENROUTER_API_KEY",
        "DASHSCOPE_API_KEY",
    ]
}


@pytest.fixture
def upstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def _snapshot() -> list:
    return [
        sorted(
            Provider.objects.values_list("id", "name", "kind", "base_url", "timeout", "enabled")
        ),
        sorted(ProviderKey.objects.values_list("id", "provider_id", "secret", "weight", "enabled")),
        sorted(
            AiModel.objects.values_list(
                "id",
                "public_id",
                "type",
                "enabled",
                "input_per_mtok",
                "output_per_mtok",
                "per_image",
                "per_mchar",
                "per_minute",
            )
        ),
        sorted(
            Route.objects.values_list("id", "model_id", "position", "provider_id", "upstream_model")
        ),
    ]


def _load(path: Path | str) -> str:
    out = StringIO()
    call_command("load_providers", str(path), stdout=out)
    return out.getvalue()


def test_the_example_file_loads_the_eight_upstreams(upstream_env: None) -> None:
    _load(EXAMPLE)
    assert Provider.objects.count() == 8
    assert set(Provider.objects.values_list("kind", flat=True)) == {
        "openai",
        "azure",
        "anthropic",
        "gemini",
    }
    gpt4o = AiModel.objects.get(public_id="gpt-4o")
    assert (gpt4o.input_per_mtok, gpt4o.output_per_mtok) == (2_500_000, 10_000_000)
    assert [r.provider.name for r in gpt4o.routes.all()] == ["openai", "azure"]
    assert AiModel.objects.get(public_id="dall-e-3").per_image["1792x1024"] == 80_000
    assert Provider.objects.get(name="azure").settings == {"api_version": "2024-10-21"}
    # OpenAI speaks the Responses API: /v1/responses is forwarded to it as written.
    assert Provider.objects.get(name="openai").settings == {"responses_api": True}
    assert Provider.objects.get(name="deepseek").settings == {}
    assert ProviderKey.objects.get(provider__name="openai").secret == "secret-for-openai_api_key"


def test_loading_twice_changes_nothing(upstream_env: None) -> None:
    _load(EXAMPLE)
    before = _snapshot()
    output = _load(EXAMPLE)
    assert _snapshot() == before
    assert "0 created, 0 updated" in output


def test_a_model_removed_from_the_file_is_disabled_not_deleted(
    upstream_env: None, tmp_path: Path
) -> None:
    _load(EXAMPLE)
    text = EXAMPLE.read_text().replace("  - id: qwen-max\n", "  - id: qwen-max-renamed\n")
    smaller = tmp_path / "p.yaml"
    smaller.write_text(text)
    output = _load(smaller)
    assert AiModel.objects.get(public_id="qwen-max").enabled is False
    assert AiModel.objects.get(public_id="qwen-max-renamed").enabled is True
    assert "qwen-max" in output


GOOD = """\
providers:
  - name: up
    kind: openai
    base_url: http://127.0.0.1:9/v1
    keys: [literal-key]
models:
  - id: m1
    routes: [{provider: up, upstream_model: m1}]
    price: {input_per_mtok: 1, output_per_mtok: 2}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("kind: openai", "kind: cohere"),
            "line 2: providers[0] (up): unknown kind 'cohere'",
        ),
        (
            GOOD + "  - id: m1\n    routes: [{provider: up}]\n",
            "line 10: models[1]: duplicate model id 'm1'",
        ),
        (GOOD.replace("{provider: up,", "{provider: nope,"), "route to unknown provider 'nope'"),
        (
            GOOD.replace("input_per_mtok: 1,", "input_per_mtok: -1,"),
            "line 7: models[0] (m1): price: input_per_mtok must be at least 0",
        ),
        (
            GOOD.replace("input_per_mtok: 1,", "input_per_mtok: 1.5,"),
            "input_per_mtok must be a whole number",
        ),
        (
            GOOD.replace("keys: [literal-key]", "keys: [env:NEXAI_TEST_UNSET_VAR]"),
            "environment variable NEXAI_TEST_UNSET_VAR is not set",
        ),
        (
            GOOD.replace("    keys: [literal-key]\n", "    keys: [literal-key\n"),
            "YAML syntax error",
        ),
        (
            GOOD.replace("kind: openai", "kind: gemini\n    responses_api: true"),
            "only openai and azure providers speak the Responses API",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_fault_and_leaves_the_catalogue_alone(
    upstream_env: None, tmp_path: Path, text: str, message: str
) -> None:
    _load(EXAMPLE)
    before = _snapshot()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(CommandError) as raised:
        _load(bad)
    assert message in str(raised.value)
    assert _snapshot() == before


def test_a_failing_file_exits_non_zero_from_the_shell(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("kind: openai", "kind: cohere"))
    run = subprocess.run(
        [sys.executable, "manage.py", "load_providers", str(bad)],
        cwd=EXAMPLE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "unknown kind 'cohere'" in run.stderr


def test_keys_empty_list_is_valid_and_keys_left_out_are_disabled(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    _load(path)
    path.write_text(GOOD.replace("keys: [literal-key]", "keys: []"))
    _load(path)
    assert not ProviderKey.objects.filter(enabled=True).exists()
    assert ProviderKey.objects.count() == 1
