"""The Gemini API (generateContent) as callers write it: Gemini CLI, Qwen Code and
Google's SDKs, on models whose upstream speaks something else. Each module is one
direction through the chat hub:

- request_to_chat: a generateContent request as a chat completions request;
- response_from_chat: a chat completion as a GenerateContentResponse;
- stream_from_chat: chat chunks as streamGenerateContent chunks;
- signatures: Gemini's thought signatures carried inside chat tool call ids.

(What Gemini *upstreams* are sent and answer is providers/translation/gemini.py.)
"""
