"""Copy-paste set-up for each client, filled in with this server's real base URL."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

KEY_PLACEHOLDER = "sk-nx-..."


@dataclass(frozen=True)
class Snippet:
    slug: str
    title: str
    intro: str | Promise
    language: str
    code: str


def quickstart_snippets(*, api_base: str, model: str) -> list[Snippet]:
    root = api_base.removesuffix("/v1")
    key = KEY_PLACEHOLDER
    return [
        Snippet(
            "curl",
            "curl",
            _("Any HTTP client works: the API speaks OpenAI's chat completions format."),
            "shell",
            f"""curl {api_base}/chat/completions \\
  -H "Authorization: Bearer $NEXAI_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": "{model}",
    "messages": [{{"role": "user", "content": "Hello!"}}]
  }}'""",
        ),
        Snippet(
            "openai-python",
            "OpenAI Python SDK",
            _("Install with pip install openai, then set base_url."),
            "python",
            f"""from openai import OpenAI

client = OpenAI(base_url="{api_base}", api_key="{key}")

reply = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(reply.choices[0].message.content)""",
        ),
        Snippet(
            "openai-js",
            "OpenAI JavaScript SDK",
            _("Install with npm install openai, then set baseURL."),
            "javascript",
            f"""import OpenAI from "openai";

const client = new OpenAI({{ baseURL: "{api_base}", apiKey: process.env.NEXAI_API_KEY }});

const reply = await client.chat.completions.create({{
  model: "{model}",
  messages: [{{ role: "user", content: "Hello!" }}],
}});
console.log(reply.choices[0].message.content);""",
        ),
        Snippet(
            "anthropic",
            "Anthropic SDK",
            _(
                "The Messages API works with every model. The Anthropic SDK adds /v1 itself, "
                "so its base URL is the server root."
            ),
            "python",
            f"""from anthropic import Anthropic

client = Anthropic(base_url="{root}", api_key="{key}")

message = client.messages.create(
    model="{model}",
    max_tokens=1024,
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(message.content[0].text)""",
        ),
        Snippet(
            "cursor",
            "Cursor",
            _(
                "Settings → Models → API Keys: paste your key as the OpenAI API key, turn on "
                "“Override OpenAI Base URL” and add the model names you want."
            ),
            "text",
            f"""OpenAI API Key:            {key}
Override OpenAI Base URL:  {api_base}
Model:                     {model}""",
        ),
        Snippet(
            "continue",
            "Continue",
            _("In ~/.continue/config.yaml:"),
            "yaml",
            f"""models:
  - name: nexai {model}
    provider: openai
    model: {model}
    apiBase: {api_base}
    apiKey: {key}
    roles: [chat, edit, apply]""",
        ),
        Snippet(
            "aider",
            "Aider",
            _("Aider reads OpenAI-compatible settings from the environment:"),
            "shell",
            f"""export OPENAI_API_BASE={api_base}
export OPENAI_API_KEY={key}
aider --model openai/{model}""",
        ),
        Snippet(
            "cline",
            "Cline",
            _("Cline settings → API Provider: “OpenAI Compatible”, then:"),
            "text",
            f"""Base URL:  {api_base}
API Key:   {key}
Model ID:  {model}""",
        ),
        Snippet(
            "codex",
            "Codex CLI",
            _("In ~/.codex/config.toml, then export NEXAI_API_KEY and run codex:"),
            "toml",
            f"""model = "{model}"
model_provider = "nexai"

[model_providers.nexai]
name = "nexai"
base_url = "{api_base}"
env_key = "NEXAI_API_KEY"
wire_api = "responses\"""",
        ),
        Snippet(
            "claude-code",
            "Claude Code",
            _("Point Claude Code at this server (any model id works, not only Claude):"),
            "shell",
            f"""export ANTHROPIC_BASE_URL={api_base.removesuffix("/v1")}
export ANTHROPIC_API_KEY={key}
export ANTHROPIC_MODEL={model}
claude""",
        ),
    ]


def model_snippets(*, api_base: str, model: object) -> list[Snippet]:
    """One example call for a model, shaped by its type."""
    model_id = getattr(model, "public_id", "")
    auth = '-H "Authorization: Bearer $NEXAI_API_KEY"'
    kind = getattr(model, "type", "chat")
    if kind == "embedding":
        body = f'{{"model": "{model_id}", "input": "The quick brown fox"}}'
        code = f"""curl {api_base}/embeddings \\
  {auth} \\
  -H "Content-Type: application/json" \\
  -d '{body}'"""
    elif kind == "image":
        body = f'{{"model": "{model_id}", "prompt": "A lighthouse at dawn", "size": "1024x1024"}}'
        code = f"""curl {api_base}/images/generations \\
  {auth} \\
  -H "Content-Type: application/json" \\
  -d '{body}'"""
    elif kind == "speech":
        body = f'{{"model": "{model_id}", "input": "Hello from nexai!", "voice": "alloy"}}'
        code = f"""curl {api_base}/audio/speech \\
  {auth} \\
  -H "Content-Type: application/json" \\
  -d '{body}' \\
  --output hello.mp3"""
    elif kind == "transcription":
        code = f"""curl {api_base}/audio/transcriptions \\
  {auth} \\
  -F model={model_id} \\
  -F file=@meeting.mp3"""
    else:
        code = f"""curl {api_base}/chat/completions \\
  {auth} \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": "{model_id}",
    "messages": [{{"role": "user", "content": "Hello!"}}]
  }}'"""
    return [Snippet("curl", "curl", "", "shell", code)]
