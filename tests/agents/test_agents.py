"""Codex CLI and Claude Code, unchanged and with their default settings, complete a
turn and a tool round trip (they run a harmless shell command and send its output
back) through the gateway, on an OpenAI-kind and on an Anthropic-kind model, and each
upstream call is charged exactly the upstream's usage at the model's price.

The only settings given are the ones each tool documents for using another endpoint
(docs/api.md shows them): Codex gets a model provider in config.toml, Claude Code
ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_MODEL.
"""

from __future__ import annotations

import json
import os
import subprocess
from math import ceil
from pathlib import Path

import pytest

from tests.fakes.base import FakeServer, ToolCall
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, settled

from .conftest import Agents, Stack

pytestmark = pytest.mark.agents

PROMPT_TOKENS, COMPLETION_TOKENS = 1200, 34
ANSWER = "All done from the fake model."
# The command's output appears nowhere in the command itself, so finding it in the
# next upstream request proves the agent ran it and sent the result back.
COMMAND, OUTPUT = "printf 'ok-%s' 7291", "ok-7291"
AGENT_TIMEOUT = 180

CODEX_CONFIG = """\
model = "{model}"
model_provider = "nexai"

[model_providers.nexai]
name = "nexai"
base_url = "{base_url}/v1"
env_key = "NEXAI_API_KEY"
wire_api = "responses"
"""


def clean_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI", "ANTHROPIC", "CODEX", "CLAUDE"))
    }
    # The agents' own telemetry and update checks would leave the machine.
    env.update(
        HOME=str(home), NO_COLOR="1", DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1",
        DISABLE_AUTOUPDATER="1",
    )  # fmt: skip
    return env


# Codex's built-in OpenAI provider pointed at the gateway; the key goes in with
# `codex login --with-api-key`.
CODEX_BUILTIN_CONFIG = """\
model = "{model}"
openai_base_url = "{base_url}/v1"
"""


def run_codex(
    agents: Agents, stack: Stack, model: str, prompt: str, tmp: Path, *, builtin: bool = False
) -> str:
    home, work = tmp / "home", tmp / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    template = CODEX_BUILTIN_CONFIG if builtin else CODEX_CONFIG
    config = template.format(model=model, base_url=stack.gateway.base_url)
    (home / ".codex" / "config.toml").write_text(config)
    env = clean_env(home) | {
        "CODEX_HOME": str(home / ".codex"),
        "NEXAI_API_KEY": stack.customer.key.secret,
    }
    if builtin:
        login = [str(agents.codex), "login", "--with-api-key"]
        subprocess.run(login, input=stack.customer.key.secret, text=True, env=env, check=True,
                       capture_output=True, timeout=AGENT_TIMEOUT)  # fmt: skip
    last = tmp / "last-message.txt"
    command = [str(agents.codex), "exec", "--skip-git-repo-check", "-o", str(last), prompt]
    result = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=AGENT_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"codex failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return last.read_text()


def run_claude(agents: Agents, stack: Stack, model: str, prompt: str, tmp: Path) -> str:
    home, work = tmp / "home", tmp / "work"
    home.mkdir()
    work.mkdir()
    env = clean_env(home) | {
        "ANTHROPIC_BASE_URL": stack.gateway.base_url,
        "ANTHROPIC_API_KEY": stack.customer.key.secret,
        "ANTHROPIC_MODEL": model,
    }
    # -p refuses tools that need the user's permission unless they are allowed.
    command = [str(agents.claude), "-p", prompt, "--allowedTools", "Bash(printf:*)"]
    result = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=AGENT_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"claude failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def upstream_of(stack: Stack, model: str) -> FakeServer:
    return stack.openai if model == "gpt-4o" else stack.anthropic


def model_calls(fake: FakeServer) -> list:
    """The upstream's answered model calls (not count_tokens or model lists)."""
    paths = ("/chat/completions", "/responses", "/v1/messages")
    return [r for r in fake.requests if r.path.endswith(paths) and r.status == 200]


def assert_charged_exactly(stack: Stack, calls: int) -> None:
    """One usage record per upstream call, each charged the fake's usage at the price."""
    expected = ceil((PROMPT_TOKENS * INPUT_PRICE + COMPLETION_TOKENS * OUTPUT_PRICE) / 1_000_000)
    records = [r for r in settled(stack.customer) if r.charge]
    assert [(r.input_tokens, r.output_tokens) for r in records] == [
        (PROMPT_TOKENS, COMPLETION_TOKENS)
    ] * calls
    assert [r.charge for r in records] == [expected] * calls


def script(fake: FakeServer, *, tool: ToolCall | None) -> None:
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
    fake.set_reply(text=ANSWER, **usage)
    if tool is not None:
        fake.queue_reply(tool_calls=[tool], **usage)


def assert_round_trip(fake: FakeServer) -> None:
    first, second = (json.dumps(r.json) for r in model_calls(fake))
    assert OUTPUT not in first
    assert OUTPUT in second, "the command's output never reached the upstream"


MODELS = ["gpt-4o", "claude-sonnet"]


@pytest.mark.parametrize("model", MODELS)
def test_codex_first_turn(agents: Agents, stack: Stack, model: str, tmp_path: Path) -> None:
    fake = upstream_of(stack, model)
    script(fake, tool=None)
    answer = run_codex(agents, stack, model, "Say hello.", tmp_path)
    assert ANSWER in answer
    assert len(model_calls(fake)) == 1
    assert_charged_exactly(stack, 1)


@pytest.mark.parametrize("model", MODELS)
def test_codex_tool_round_trip(agents: Agents, stack: Stack, model: str, tmp_path: Path) -> None:
    fake = upstream_of(stack, model)
    script(fake, tool=ToolCall(name="exec_command", arguments=json.dumps({"cmd": COMMAND})))
    answer = run_codex(agents, stack, model, f"Run `{COMMAND}`.", tmp_path)
    assert ANSWER in answer
    assert_round_trip(fake)
    assert_charged_exactly(stack, 2)


def test_codex_with_its_builtin_provider_first_turn(
    agents: Agents, stack: Stack, tmp_path: Path
) -> None:
    """`openai_base_url` and `codex login --with-api-key`: Codex first asks for a
    Responses WebSocket (test_gateway_replay checks the quick 426), then uses HTTP."""
    script(stack.openai, tool=None)
    answer = run_codex(agents, stack, "gpt-4o", "Say hello.", tmp_path, builtin=True)
    assert ANSWER in answer
    assert len(model_calls(stack.openai)) == 1
    assert_charged_exactly(stack, 1)


@pytest.mark.parametrize("model", MODELS)
def test_claude_code_first_turn(agents: Agents, stack: Stack, model: str, tmp_path: Path) -> None:
    fake = upstream_of(stack, model)
    script(fake, tool=None)
    answer = run_claude(agents, stack, model, "Say hello.", tmp_path)
    assert ANSWER in answer
    assert len(model_calls(fake)) == 1
    assert_charged_exactly(stack, 1)


@pytest.mark.parametrize("model", MODELS)
def test_claude_code_tool_round_trip(
    agents: Agents, stack: Stack, model: str, tmp_path: Path
) -> None:
    fake = upstream_of(stack, model)
    arguments = {"command": COMMAND, "description": "Print a token"}
    script(fake, tool=ToolCall(name="Bash", arguments=json.dumps(arguments)))
    answer = run_claude(agents, stack, model, f"Run `{COMMAND}`.", tmp_path)
    assert ANSWER in answer
    assert_round_trip(fake)
    assert_charged_exactly(stack, 2)
