"""Answers: extractive composition, LCEL chains, prompts, chat-model providers and follow-ups.
Imports `assistant.search` and `assistant.core`."""
