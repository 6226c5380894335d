"""Gemini CLI and Qwen Code (its fork), unchanged, complete a turn and a tool round trip
(they run a harmless shell command and send its output back) through the gateway's
Gemini API, on an OpenAI-kind, an Anthropic-kind and a Gemini-kind model, and each
upstream call is charged exactly the upstream's usage at the model's price.

The only settings given are the ones docs/api.md shows: GOOGLE_GEMINI_BASE_URL and
GEMINI_API_KEY, with the API-key sign-in chosen in ~/.gemini/settings.json (Gemini CLI
would otherwise ask which sign-in to use), and the model with -m (Qwen Code:
--auth-type gemini and GEMINI_MODEL).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.base import FakeServer, ToolCall

from .conftest import AGENTS_DIR, Agents, GoogleStack, Stack
from .test_agents import (
    AGENT_TIMEOUT,
    ANSWER,
    COMMAND,
    OUTPUT,
    assert_charged_exactly,
    clean_env,
    script,
)

pytestmark = pytest.mark.agents

MODELS = ["gpt-4o", "claude-sonnet", "gemini-pro"]
# Gemini CLI's shell tool; the command is allowed to run without asking.
SHELL = "run_shell_command"
ALLOWED = f"{SHELL}(printf)"
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def upstream_of(stack: GoogleStack, model: str) -> FakeServer:
    fakes = {"gpt-4o": stack.openai, "claude-sonnet": stack.anthropic}
    return fakes.get(model) or stack.gemini


def model_calls(fake: FakeServer) -> list:
    paths = ("/chat/completions", "/v1/messages", ":generateContent", ":streamGenerateContent")
    return [r for r in fake.requests if r.path.endswith(paths) and r.status == 200]


def run(binary: Path, stack: Stack, model: str, prompt: str, tmp: Path, *, qwen: bool) -> str:
    home, work = tmp / "home", tmp / "work"
    work.mkdir()
    folder = home / (".qwen" if qwen else ".gemini")
    folder.mkdir(parents=True)
    # Qwen Code also asks the model, after each turn, what to keep in its memory
    # files: a real call (charged like any), switched off here to count the turns.
    memory = {"memory": {"enableManagedAutoMemory": False}} if qwen else {}
    (folder / "settings.json").write_text(json.dumps(SETTINGS | memory))
    env = {
        k: v for k, v in clean_env(home).items() if not k.startswith(("GEMINI", "GOOGLE", "QWEN"))
    } | {
        "GOOGLE_GEMINI_BASE_URL": stack.gateway.base_url,
        "GEMINI_API_KEY": stack.customer.key.secret,
    }
    if qwen:
        command = [str(binary), "--auth-type", "gemini", "-p", prompt]
        env["GEMINI_MODEL"] = model
    else:
        # --skip-trust: a headless run in a folder never opened before.
        command = [str(binary), "-m", model, "--skip-trust", "-p", prompt]
    result = subprocess.run(
        [*command, "--allowed-tools", ALLOWED], cwd=work, env=env, capture_output=True,
        text=True, timeout=AGENT_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, f"failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def binary(agents: Agents, name: str) -> Path:
    del agents  # installed (or brought up to date) by the fixture
    return AGENTS_DIR / "node_modules" / ".bin" / name


def assert_round_trip(fake: FakeServer) -> None:
    first, second = (json.dumps(r.json) for r in model_calls(fake))
    assert OUTPUT not in first
    assert OUTPUT in second, "the command's output never reached the upstream"


AGENTS = [pytest.param("gemini", id="gemini-cli"), pytest.param("qwen", id="qwen-code")]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("agent", AGENTS)
def test_first_turn(
    agents: Agents, google: GoogleStack, agent: str, model: str, tmp_path: Path
) -> None:
    fake = upstream_of(google, model)
    script(fake, tool=None)
    answer = run(binary(agents, agent), google, model, "Say hello.", tmp_path, qwen=agent == "qwen")
    assert ANSWER in answer
    assert len(model_calls(fake)) == 1
    assert_charged_exactly(google, 1)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("agent", AGENTS)
def test_tool_round_trip(
    agents: Agents, google: GoogleStack, agent: str, model: str, tmp_path: Path
) -> None:
    fake = upstream_of(google, model)
    arguments = {"command": COMMAND, "description": "Print a token"}
    script(fake, tool=ToolCall(name=SHELL, arguments=json.dumps(arguments)))
    prompt = f"Run `{COMMAND}`."
    answer = run(binary(agents, agent), google, model, prompt, tmp_path, qwen=agent == "qwen")
    assert ANSWER in answer
    assert_round_trip(fake)
    assert_charged_exactly(google, 2)
