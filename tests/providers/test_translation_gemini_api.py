"""The Gemini API as callers write it, through the chat hub and back: pure functions,
table-tested (providers/translation/gemini_api)."""

from __future__ import annotations

import base64
import json

import pytest

from providers.translation import TranslationError, TranslationNotes
from providers.translation.gemini import chat_request_to_gemini, gemini_response_to_chat
from providers.translation.gemini_api import signatures
from providers.translation.gemini_api.request_to_chat import gemini_request_to_chat, json_schema
from providers.translation.gemini_api.response_from_chat import chat_response_to_gemini
from providers.translation.gemini_api.stream_from_chat import ChatStreamToGemini
from providers.translation.usage import Usage

SIGNATURE = base64.b64encode(bytes(range(200, 248))).decode()  # has "+" and "/"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def user(*parts: dict) -> dict:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict) -> dict:
    return {"role": "model", "parts": list(parts)}


def call(name: str, args: dict, **extra: object) -> dict:
    return {"functionCall": {"name": name, "args": args, **extra}}


def result(name: str, output: str, **extra: object) -> dict:
    return {"functionResponse": {"name": name, "response": {"output": output}, **extra}}


def to_chat(body: dict, **kwargs: object) -> dict:
    return gemini_request_to_chat(body, stream=False, **kwargs)  # type: ignore[arg-type]


# -- requests ---------------------------------------------------------------------------


def test_text_system_instruction_and_turns() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
        "contents": [
            user({"text": "Hi"}),
            model(
                {"text": "Hello", "thoughtSignature": SIGNATURE}, {"text": "hmm", "thought": True}
            ),
            {"parts": [{"text": "Again"}]},  # no role: the user's
        ],
    }
    assert to_chat(body)["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]


def test_parallel_calls_are_answered_by_the_callers_ids() -> None:
    """Gemini CLI numbers its calls; the responses name the same ids."""
    body = {
        "contents": [
            user({"text": "Two cities"}),
            model(
                call("weather", {"city": "A"}, id="w_1"), call("weather", {"city": "B"}, id="w_2")
            ),
            user(result("weather", "rain", id="w_2"), result("weather", "sun", id="w_1")),
        ]
    }
    messages = to_chat(body)["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["w_1", "w_2"]
    assert json.loads(messages[1]["tool_calls"][1]["function"]["arguments"]) == {"city": "B"}
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "w_2", "content": "rain"},
        {"role": "tool", "tool_call_id": "w_1", "content": "sun"},
    ]


def test_calls_without_ids_are_answered_by_name_in_order_with_stable_ids() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model(call("ls", {}), call("cat", {"path": "a"}), call("ls", {"dir": "b"})),
            user(result("cat", "A"), result("ls", "one"), result("ls", "two"), {"text": "and?"}),
        ]
    }
    messages = to_chat(body)["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_1_0", "call_1_1", "call_1_2"]
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in messages[2:]] == [
        ("tool", "call_1_1", "A"),
        ("tool", "call_1_0", "one"),
        ("tool", "call_1_2", "two"),
        ("user", None, "and?"),
    ]
    assert to_chat(body) == to_chat(body)  # the same history, the same ids


def test_a_response_to_no_call_is_refused_naming_it() -> None:
    body = {"contents": [user({"text": "x"}), user(result("ls", "one"))]}
    with pytest.raises(TranslationError) as caught:
        to_chat(body)
    assert caught.value.param == "contents[1].parts[0].functionResponse"


def test_thought_signatures_ride_in_the_ids_only_when_asked() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model({**call("ls", {}, id="c1"), "thoughtSignature": SIGNATURE}),
            user(result("ls", "one", id="c1")),
        ]
    }
    plain = to_chat(body)["messages"]
    kept = to_chat(body, keep_signatures=True)["messages"]
    assert plain[1]["tool_calls"][0]["id"] == "c1"
    kept_id = kept[1]["tool_calls"][0]["id"]
    assert kept_id.startswith("c1" + signatures.MARKER) and kept[2]["tool_call_id"] == kept_id
    # ...and reach a Gemini upstream as the signature it gave.
    gemini = chat_request_to_gemini({"messages": kept})
    assert gemini["contents"][1]["parts"][0]["thoughtSignature"] == SIGNATURE


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"inlineData": {"mimeType": "image/png", "data": PNG}},
         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
        ({"inlineData": {"mimeType": "application/pdf", "data": PNG}},
         {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PNG}", "filename": "document.pdf"}}),
        ({"inlineData": {"mimeType": "audio/wav", "data": PNG}},
         {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}}),
        ({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
         {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}),
    ],
)  # fmt: skip
def test_media_parts(part: dict, expected: dict) -> None:
    messages = to_chat({"contents": [user({"text": "look"}, part)]})["messages"]
    assert messages == [{"role": "user", "content": [{"type": "text", "text": "look"}, expected]}]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"inlineData": {"mimeType": "video/mp4", "data": PNG}}, "contents[0].parts[0].inlineData"),
        ({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}, "contents[0].parts[0].inlineData"),
        ({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/a.pdf"}}, "contents[0].parts[0].fileData"),
    ],
)  # fmt: skip
def test_media_other_upstreams_cannot_take_is_a_400_naming_the_part(part: dict, param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        to_chat({"contents": [user(part)]})
    assert caught.value.param == param


def test_generation_config_tools_and_what_is_dropped() -> None:
    notes = TranslationNotes()
    body = {
        "contents": [user({"text": "Hi"})],
        "generationConfig": {
            "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 77,
            "stopSequences": ["END"], "seed": 3, "candidateCount": 1,
            "responseMimeType": "application/json",
            "thinkingConfig": {"includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "tools": [
            {"functionDeclarations": [
                {"name": "a", "description": "A", "parametersJsonSchema": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                {"name": "b", "parameters": {"type": "OBJECT", "properties": {"y": {"type": "STRING", "nullable": True}}}},
                {"name": "c"},
            ]},
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}},
    }  # fmt: skip
    out = gemini_request_to_chat(body, stream=True, notes=notes)
    assert {k: v for k, v in out.items() if k not in ("messages", "tools", "model")} == {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 77, "stop": ["END"], "seed": 3, "n": 1,
        "response_format": {"type": "json_object"},
        "tool_choice": {"type": "function", "function": {"name": "b"}},
        "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip
    assert [t["function"]["parameters"] for t in out["tools"]] == [
        {"type": "object", "properties": {"x": {"type": "integer"}}},
        {"type": "object", "properties": {"y": {"type": ["string", "null"]}}},
        {"type": "object", "properties": {}},
    ]
    assert notes.headers() == {
        "x-nexai-dropped-tools": "googleSearch (tools[1])",
        "x-nexai-dropped-settings": "generationConfig.topK, generationConfig.thinkingConfig, safetySettings",
    }


def test_a_response_schema_becomes_a_json_schema_response_format() -> None:
    body = {
        "contents": [user({"text": "Hi"})],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "ARRAY",
                "items": {"type": "STRING"},
                "propertyOrdering": [],
            },
        },
    }
    assert to_chat(body)["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert json_schema({"anyOf": [{"type": "INTEGER"}]}) == {"anyOf": [{"type": "integer"}]}


@pytest.mark.parametrize(
    ("config", "choice"),
    [({"mode": "AUTO"}, "auto"), ({"mode": "NONE"}, "none"), ({"mode": "ANY"}, "required"),
     ({"mode": "VALIDATED"}, "auto")],
)  # fmt: skip
def test_function_calling_modes(config: dict, choice: str) -> None:
    body = {
        "contents": [user({"text": "Hi"})],
        "tools": [{"functionDeclarations": [{"name": "a"}]}],
        "toolConfig": {"functionCallingConfig": config},
    }
    assert to_chat(body)["tool_choice"] == choice


def test_cached_content_lives_only_at_google() -> None:
    with pytest.raises(TranslationError) as caught:
        to_chat({"contents": [user({"text": "Hi"})], "cachedContent": "cachedContents/abc"})
    assert caught.value.param == "cachedContent"


# -- answers ------------------------------------------------------------------------------


def completion(message: dict, finish: str = "stop", usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or Usage(input_tokens=10, output_tokens=5, reasoning_tokens=2, cached_input_tokens=4).to_openai_chat(),
    }  # fmt: skip


def test_a_completion_as_a_generate_content_response() -> None:
    signed = signatures.with_signature("call_9", SIGNATURE)
    message = {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {"id": signed, "type": "function", "function": {"name": "ls", "arguments": '{"dir": "."}'}},
            {"id": "call_2", "type": "function", "function": {"name": "cat", "arguments": "{}"}},
        ],
    }  # fmt: skip
    answer = chat_response_to_gemini(completion(message, "tool_calls"), model="acc-chat")
    assert answer == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me look."},
                        {"functionCall": {"id": "call_9", "name": "ls", "args": {"dir": "."}}, "thoughtSignature": SIGNATURE},
                        {"functionCall": {"id": "call_2", "name": "cat", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10, "candidatesTokenCount": 3, "totalTokenCount": 15,
            "cachedContentTokenCount": 4, "thoughtsTokenCount": 2,
        },
        "modelVersion": "acc-chat",
        "responseId": "abc123",
    }  # fmt: skip
    assert Usage.from_gemini(answer["usageMetadata"]) == Usage(
        input_tokens=10, output_tokens=5, reasoning_tokens=2, cached_input_tokens=4
    )


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "STOP"),
        ("length", "MAX_TOKENS"),
        ("content_filter", "SAFETY"),
        ("tool_calls", "STOP"),
    ],
)
def test_finish_reasons(finish: str, reason: str) -> None:
    answer = chat_response_to_gemini(completion({"content": "x"}, finish), model="m")
    assert answer["candidates"][0]["finishReason"] == reason


def test_a_chat_stream_as_gemini_chunks() -> None:
    stream = ChatStreamToGemini(model="acc-chat")

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            "id": "chatcmpl-s1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def fragment(index: int, arguments: str, **head: str) -> dict:
        return chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "function": {
                            "arguments": arguments,
                            **({"name": head["name"]} if head else {}),
                        },
                        **({"id": head["id"]} if head else {}),
                    }
                ]
            }
        )

    out = []
    for piece in [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        fragment(0, '{"a"', id="call_a", name="one"),
        fragment(0, ": 1}"),
        fragment(1, "{}", id="call_b", name="two"),
        chunk({}, "tool_calls"),
        {"id": "chatcmpl-s1", "choices": [], "usage": Usage(7, 3).to_openai_chat()},
    ]:
        out += stream.feed(piece)
    out += stream.finish()
    parts = [c["candidates"][0]["content"]["parts"] for c in out]
    assert parts == [
        [{"text": "Hel"}],
        [{"text": "lo"}],
        [{"functionCall": {"id": "call_a", "name": "one", "args": {"a": 1}}}],
        [{"functionCall": {"id": "call_b", "name": "two", "args": {}}}],
    ]
    assert "finishReason" not in out[0]["candidates"][0]
    assert out[-1]["candidates"][0]["finishReason"] == "STOP"
    assert out[-1]["usageMetadata"] == {
        "promptTokenCount": 7,
        "candidatesTokenCount": 3,
        "totalTokenCount": 10,
    }
    assert {c["modelVersion"] for c in out} == {"acc-chat"} and {c["responseId"] for c in out} == {
        "s1"
    }


def test_a_stream_of_only_text_ends_with_an_empty_part_carrying_the_end() -> None:
    stream = ChatStreamToGemini(model="m")
    stream.feed(
        {
            "id": "chatcmpl-x",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "length"}],
        }
    )
    (last,) = stream.finish()
    assert last["candidates"][0] == {
        "content": {"role": "model", "parts": [{"text": ""}]}, "index": 0, "finishReason": "MAX_TOKENS",
    }  # fmt: skip


# -- a Gemini upstream's signatures, for chat callers ---------------------------------------


def test_a_gemini_upstreams_signature_comes_back_to_it_through_a_chat_caller() -> None:
    answer = {
        "candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "ls", "args": {}}, "thoughtSignature": SIGNATURE},
            {"functionCall": {"name": "cat", "args": {}}},
        ]}, "finishReason": "STOP"}],
    }  # fmt: skip
    calls = gemini_response_to_chat(answer, model="m")["choices"][0]["message"]["tool_calls"]
    assert set("".join(c["id"] for c in calls)) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    )  # Anthropic's ids allow no more
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls),
    ]
    sent = chat_request_to_gemini({"messages": history})["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in sent] == [SIGNATURE, None]


@pytest.mark.parametrize(
    "given", [SIGNATURE, SIGNATURE.rstrip("="), SIGNATURE.replace("+", "-").replace("/", "_")]
)
def test_signatures_in_either_base64_alphabet_round_trip(given: str) -> None:
    base, signature = signatures.split(signatures.with_signature("call_1", given))
    assert (base, signature) == ("call_1", SIGNATURE)
    assert signatures.split("call_plain") == ("call_plain", None)
    assert signatures.with_signature("call_1", "not a signature!") == "call_1"


def test_a_response_repeated_for_one_call_is_sent_once() -> None:
    """Gemini CLI 0.61 repeats each function response when it resumes a session (see
    the corpus's gemini-cli resumed captures); chat upstreams refuse a call answered
    twice."""
    body = {
        "contents": [
            user({"text": "go"}),
            model(call("ls", {}, id="c1")),
            user(result("ls", "one", id="c1"), result("ls", "one", id="c1")),
        ]
    }
    assert to_chat(body)["messages"][2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"}
    ]


def test_field_names_in_either_spelling_are_read_alike() -> None:
    """Google takes snake_case field names too, and its Python SDK sends an inline
    image's `mime_type` so; names inside arguments and schemas are never touched."""
    from providers.translation.gemini_api.field_names import camel_case_request

    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"inline_data": {"mime_type": "image/png", "data": PNG.replace("+", "-")}}),
            model({"function_call": {"name": "read", "args": {"file_path": "a"}}}),
            user({"function_response": {"name": "read", "response": {"file_text": "x"}}}),
        ],
        "generation_config": {"max_output_tokens": 5, "response_schema": {"type": "OBJECT", "properties": {"snake_name": {"type": "STRING"}}}},
        "tools": [{"function_declarations": [{"name": "read", "parameters_json_schema": {"properties": {"file_path": {}}}}]}],
    }  # fmt: skip
    normal = camel_case_request(body)
    assert normal["generationConfig"]["maxOutputTokens"] == 5
    assert normal["contents"][1]["parts"][0]["functionCall"]["args"] == {"file_path": "a"}
    assert "snake_name" in normal["generationConfig"]["responseSchema"]["properties"]
    assert normal["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == {
        "properties": {"file_path": {}}
    }
    chat = to_chat(normal)
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1]["content"][0]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    assert chat["messages"][3]["content"] == '{"file_text": "x"}'
    assert camel_case_request(normal) is normal  # nothing to rename: nothing copied
