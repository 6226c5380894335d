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


def _load(path: Path | str, *flags: str) -> str:
    out = StringIO()
    call_command("load_providers", str(path), *flags, stdout=out, stderr=out)
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


def test_a_model_removed_from_the_file_is_listed_and_disabled_only_with_prune(
    upstream_env: None, tmp_path: Path
) -> None:
    _load(EXAMPLE)
    text = EXAMPLE.read_text().replace("  - id: qwen-max\n", "  - id: qwen-max-renamed\n")
    smaller = tmp_path / "p.yaml"
    smaller.write_text(text)
    output = _load(smaller)
    assert AiModel.objects.get(public_id="qwen-max").enabled is True
    assert "run with --prune to disable): model qwen-max" in output
    output = _load(smaller, "--prune")
    assert AiModel.objects.get(public_id="qwen-max").enabled is False
    assert AiModel.objects.get(public_id="qwen-max-renamed").enabled is True
    assert "disabled (no longer in the file): model qwen-max" in output


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


def test_keys_empty_list_is_valid_and_keys_left_out_are_disabled_with_prune(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    _load(path)
    path.write_text(GOOD.replace("keys: [literal-key]", "keys: []"))
    _load(path)
    assert ProviderKey.objects.filter(enabled=True).count() == 1
    _load(path, "--prune")
    assert not ProviderKey.objects.filter(enabled=True).exists()
    assert ProviderKey.objects.count() == 1


# ---- one source of truth: origin, --prune, --dry-run -----------------------------------


def _admin_made() -> tuple[Provider, AiModel]:
    """A provider, key and model staff created in the admin (origin admin)."""
    provider = Provider.objects.create(name="staff-up", kind="openai", base_url="http://x/v1")
    ProviderKey.objects.create(provider=provider, secret="staff-secret")
    model = AiModel.objects.create(public_id="staff-model", input_per_mtok=5)
    Route.objects.create(model=model, provider=provider, upstream_model="m")
    return provider, model


def test_load_without_prune_disables_nothing_it_did_not_create(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    provider, model = _admin_made()
    # A key added in the admin to a provider the file manages.
    ProviderKey.objects.create(
        provider=Provider.objects.get_or_create(
            name="up", defaults={"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
        )[0],
        secret="added-in-admin",
    )
    for flags in [(), ("--prune",)]:
        output = _load(path, *flags)
        assert Provider.objects.get(pk=provider.pk).enabled
        assert AiModel.objects.get(pk=model.pk).enabled
        assert ProviderKey.objects.filter(enabled=True).count() == 3
        assert "created in the admin, not in the file, left as they are" in output
        assert "model staff-model" in output and "provider staff-up" in output


def test_an_admin_made_entry_listed_in_the_file_becomes_the_files(tmp_path: Path) -> None:
    Provider.objects.create(name="up", kind="openai", base_url="http://old/v1")
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    _load(path)
    up = Provider.objects.get(name="up")
    assert (up.origin, up.base_url) == ("file", "http://127.0.0.1:9/v1")
    path.write_text(
        GOOD.replace("  - id: m1", "  - id: m2")
        .replace("name: up", "name: up2")
        .replace("provider: up,", "provider: up2,")
    )
    output = _load(path, "--prune")
    assert not Provider.objects.get(name="up").enabled
    assert "disable provider up" in output


def test_dry_run_shows_the_diff_and_changes_nothing(upstream_env: None, tmp_path: Path) -> None:
    from audit.models import AuditEntry

    _load(EXAMPLE)
    before, audits = _snapshot(), AuditEntry.objects.count()
    text = EXAMPLE.read_text().replace("  - id: qwen-max\n", "  - id: qwen-max-renamed\n")
    text = text.replace(
        "input_per_mtok: 2500000, output_per_mtok: 10000000",
        "input_per_mtok: 3000000, output_per_mtok: 10000000",
        1,
    )
    changed = tmp_path / "p.yaml"
    changed.write_text(text)
    output = _load(changed, "--dry-run", "--prune")
    assert _snapshot() == before
    assert AuditEntry.objects.count() == audits
    assert "Dry run, nothing changed" in output
    assert "create model qwen-max-renamed" in output
    assert "update model gpt-4o: input_per_mtok 2500000 -> 3000000" in output
    assert "disable model qwen-max (no longer in the file)" in output


def test_each_load_that_changes_something_is_audited_as_the_command(tmp_path: Path) -> None:
    from audit.models import AuditEntry

    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    _load(path)
    _load(path)  # nothing changed: nothing to record
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_label, entry.action) == (None, "command", "catalogue.load")
    assert "create model m1" in entry.after["changes"]


# ---- --only-with-keys ------------------------------------------------------------------

TWO = """\
providers:
  - name: have
    kind: openai
    base_url: http://127.0.0.1:9/v1
    keys: [env:NEXAI_TEST_SET_KEY]
  - name: lack
    kind: openai
    base_url: http://127.0.0.1:9/v1
    keys: [env:NEXAI_TEST_UNSET_KEY]
models:
  - id: both
    routes: [{provider: lack}, {provider: have}]
  - id: only-lack
    routes: [{provider: lack}]
"""


def test_only_with_keys_skips_providers_without_keys_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXAI_TEST_SET_KEY", "set-secret")
    monkeypatch.delenv("NEXAI_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "p.yaml"
    path.write_text(TWO)
    with pytest.raises(CommandError, match="NEXAI_TEST_UNSET_KEY is not set"):
        _load(path)
    output = _load(path, "--only-with-keys")
    assert list(Provider.objects.values_list("name", flat=True)) == ["have"]
    assert list(AiModel.objects.values_list("public_id", flat=True)) == ["both"]
    assert [r.provider.name for r in AiModel.objects.get().routes.all()] == ["have"]
    assert "skipped: provider lack (NEXAI_TEST_UNSET_KEY not set)" in output
    assert "skipped: model only-lack (no provider left)" in output
    assert "skipped: routes of both to lack" in output


# ---- cost prices -----------------------------------------------------------------------

COSTED = """\
providers:
  - name: up
    kind: openai
    base_url: http://127.0.0.1:9/v1
    keys: [literal-key]
models:
  - id: m1
    routes:
      - provider: up
        cost: {input_per_mtok: 1000000, output_per_mtok: 4000000}
    price: {input_per_mtok: 1200000, output_per_mtok: 5000000}
"""


def test_route_costs_are_loaded_next_to_the_selling_price(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(COSTED)
    _load(path)
    route = Route.objects.get()
    assert route.cost == {"input_per_mtok": 1_000_000, "output_per_mtok": 4_000_000}
    assert route.cost_prices.output_per_mtok == 4_000_000
    assert "0 created, 0 updated" in _load(path)


def test_a_route_sold_below_cost_is_refused_unless_allowed_loudly(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(COSTED.replace("output_per_mtok: 5000000", "output_per_mtok: 3000000"))
    with pytest.raises(CommandError) as raised:
        _load(path)
    assert "m1 via up is sold below cost: output_per_mtok 3000000 < cost 4000000" in str(
        raised.value
    )
    assert not AiModel.objects.exists()
    path.write_text(
        path.read_text().replace(
            "      - provider: up\n", "      - provider: up\n        allow_below_cost: true\n"
        )
    )
    output = _load(path)
    assert "WARNING: m1 via up is sold below cost" in output
    assert Route.objects.get().allow_below_cost


def test_a_price_set_as_markup_over_the_dearest_route_cost(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        COSTED.replace(
            "    price: {input_per_mtok: 1200000, output_per_mtok: 5000000}",
            "      - provider: up\n        upstream_model: other\n"
            "        cost: {input_per_mtok: 1000001, output_per_mtok: 3000000}\n"
            "    price: {markup_percent: 20}",
        )
    )
    _load(path)
    model = AiModel.objects.get()
    # 1,000,001 * 1.2 = 1,200,001.2, rounded up; output from the dearer first route.
    assert (model.input_per_mtok, model.output_per_mtok) == (1_200_002, 4_800_000)
    assert model.markup_percent == 20


def test_a_markup_without_any_cost_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("{input_per_mtok: 1, output_per_mtok: 2}", "{markup_percent: 20}"))
    with pytest.raises(CommandError, match="markup_percent needs a cost"):
        _load(path)


def test_the_example_file_prices_a_model_as_cost_plus_twenty_percent(upstream_env: None) -> None:
    _load(EXAMPLE)
    model = AiModel.objects.get(public_id="deepseek-reasoner")
    assert (model.input_per_mtok, model.output_per_mtok, model.cached_input_per_mtok) == (
        336_000,
        504_000,
        33_600,
    )
    assert model.routes.get().cost["output_per_mtok"] == 420_000
