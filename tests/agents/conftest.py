"""The real coding agents (Codex CLI, Claude Code, Gemini CLI, Qwen Code) against the
gateway on a real port, with fake OpenAI, Anthropic and Gemini upstreams behind it.

The agents come from npm at the versions pinned in tests/agents/package.json, installed
once outside the repository (`make agents` does the same). Without npm the tests fail:
they are what shows the agents work, so they must not quietly skip.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from providers.models import AiModel
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import (
    ANTHROPIC_KEY,
    GEMINI_KEY,
    UPSTREAM_KEY,
    Customer,
    add_model,
    add_provider,
    customer_for,
)
from tests.servers import AsgiServer

PACKAGE = Path(__file__).parent / "package.json"
AGENTS_DIR = Path(os.environ.get("NEXAI_AGENTS_DIR") or Path.home() / ".cache/nexai/agents")


@dataclass(frozen=True)
class Agents:
    codex: Path
    claude: Path


@pytest.fixture(scope="session")
def agents() -> Agents:
    """The agent binaries, installed from npm when missing or pinned differently."""
    bin_dir = AGENTS_DIR / "node_modules" / ".bin"
    installed = AGENTS_DIR / "package.json"
    current = installed.exists() and filecmp.cmp(PACKAGE, installed, shallow=False)
    if not (current and (bin_dir / "codex").exists() and (bin_dir / "claude").exists()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: install Node.js and npm, then run `make agents`")
        AGENTS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE, installed)
        result = subprocess.run(
            [npm, "install", "--prefix", str(AGENTS_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            pytest.fail(f"npm install failed:\n{result.stderr[-2000:]}")
    return Agents(codex=bin_dir / "codex", claude=bin_dir / "claude")


@dataclass
class Stack:
    gateway: AsgiServer
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    customer: Customer
    models: dict[str, AiModel]


@pytest.fixture
def stack(transactional_db: None) -> Iterator[Stack]:
    """gpt-4o on an OpenAI-kind upstream, claude-sonnet on an Anthropic-kind one, a
    funded customer, and the gateway serving them on a real port."""
    with (
        FakeOpenAI(expected_key=UPSTREAM_KEY) as fake_openai,
        FakeAnthropic(expected_key=ANTHROPIC_KEY) as fake_anthropic,
    ):
        # As providers.example.yaml marks OpenAI: it speaks the Responses API.
        openai_provider = add_provider(
            "openai", fake_openai.base_url + "/v1", UPSTREAM_KEY, responses_api=True
        )
        anthropic_provider = add_provider(
            "anthropic", fake_anthropic.base_url, ANTHROPIC_KEY, kind="anthropic"
        )
        models = {
            "gpt-4o": add_model("gpt-4o", (openai_provider, "gpt-4o")),
            "claude-sonnet": add_model(
                "claude-sonnet", (anthropic_provider, "claude-sonnet-4-5"), max_output_tokens=8192
            ),
        }
        gateway = AsgiServer().start()
        try:
            yield Stack(gateway, fake_openai, fake_anthropic, customer_for(gateway), models)
        finally:
            gateway.stop()


@dataclass
class GoogleStack(Stack):
    gemini: FakeGemini


@pytest.fixture
def google(stack: Stack) -> Iterator[GoogleStack]:
    """The stack with gemini-pro on a Gemini-kind upstream as well (Gemini CLI and Qwen
    Code on the three kinds)."""
    with FakeGemini(expected_key=GEMINI_KEY) as fake:
        provider = add_provider("gemini", fake.base_url, GEMINI_KEY, kind="gemini")
        models = {
            **stack.models,
            "gemini-pro": add_model("gemini-pro", (provider, "gemini-2.5-pro")),
        }
        fields = {**vars(stack), "models": models}
        yield GoogleStack(**fields, gemini=fake)
