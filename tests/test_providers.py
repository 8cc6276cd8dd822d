"""Each real provider, for real: an OpenAI-compatible server and an Ollama server speaking
their wire protocols on loopback, and SmolLM2 through llama-cpp-python."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from assistant.answer.chains import AnswerEngine, estimate_tokens
from assistant.answer.providers import Provider, local_available, make_chat_model, resolve
from tests.conftest import PROJECT, free_port, make_settings
from tests.llm_servers import LLMServer

SECRET = "sk-test-SECRET-1234567890"


def configured(settings, **overrides):
    """Settings validated as if read from the environment (secrets become SecretStr)."""
    return type(settings).model_validate({**settings.model_dump(), **overrides})


def engine_with(service, model, provider):
    return AnswerEngine(service.pipeline, service.composer, service.settings, model, provider)


def engine_for(service, **overrides):
    settings = configured(service.settings, **overrides)
    provider = resolve(settings)
    return engine_with(service, make_chat_model(settings, provider), provider)


def answer_of(engine, question, **kw):
    stream = engine.stream(question, **kw)
    chunks = list(stream.text())
    return chunks, stream.answer


def test_auto_is_private_it_only_picks_a_server_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # many shells export one: it must not send notes away
    from assistant.core.settings import Settings

    from_env = Settings(_env_file=None, store_dir=tmp_path)
    assert from_env.openai_api_key is not None and resolve(from_env).name == "none"
    base = make_settings(tmp_path)
    local_openai = resolve(configured(base, llm_provider="auto", openai_base_url="http://127.0.0.1:8080/v1"))
    assert (local_openai.name, local_openai.where) == ("openai", "on this machine")
    assert resolve(configured(base, llm_provider="auto", ollama_base_url="http://localhost:11434")).name == "ollama"
    for elsewhere in ("http://192.168.1.20:11434", "http://10.0.0.5:8000/v1", "https://api.example.org/v1"):
        assert resolve(configured(base, llm_provider="auto", ollama_base_url=elsewhere)).name == "none"
        assert resolve(configured(base, llm_provider="auto", openai_base_url=elsewhere)).name == "none"
    # named, a remote server is used, and the answer says where it was written
    named = resolve(configured(base, llm_provider="openai", openai_api_key=SECRET))
    assert (named.name, named.where, named.remote) == ("openai", "api.openai.com", True)
    lan = resolve(configured(base, llm_provider="ollama", ollama_base_url="http://192.168.1.20:11434"))
    assert lan.where == "192.168.1.20"
    # SmolLM2 is never picked by itself (its answers rarely cite their passages): no model instead.
    assert resolve(configured(base, llm_provider="auto")).name == "none"
    assert resolve(configured(base, llm_provider="local")).name == "local"


def test_openai_compatible_streamed(service):
    with LLMServer() as server:
        engine = engine_for(
            service,
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


def test_openai_compatible_not_streamed_with_persona(service):
    with LLMServer(answer="/home/user") as server:
        settings = configured(
            service.settings, llm_provider="openai", openai_base_url=server.url + "/v1", openai_model="m"
        )
        model = make_chat_model(settings)
        model.streaming = False
        engine = engine_with(service, model, resolve(settings))
        persona = service.catalog.get("Linux Terminal")
        answer = engine.ask("pwd", persona=persona)
    body = server.requests[0]["body"]
    assert not body.get("stream")
    assert body["messages"][0] == {"role": "system", "content": persona.prompt}
    assert body["messages"][-1] == {"role": "user", "content": "pwd"}
    assert answer.text == "/home/user" and answer.mode == "persona"


def test_ollama_chat(service):
    with LLMServer(answer="Sharding splits data [1].") as server:
        engine = engine_for(service, llm_provider="ollama", ollama_base_url=server.url, ollama_model="llama3.2")
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
def test_provider_faults_give_a_message_and_the_extractive_answer(service, mode, expected):
    with LLMServer(mode=mode) as server:
        engine = engine_for(
            service,
            llm_provider="openai",
            openai_base_url=server.url + "/v1",
            openai_api_key=SECRET,
            llm_timeout=1.0,
            llm_max_retries=0,
        )
        _, answer = answer_of(engine, "what is cache-aside?")
    assert expected in answer.error and SECRET not in answer.error and SECRET not in answer.text
    assert answer.mode == "extractive" and "From your notes" in answer.text


def test_provider_down(service):
    engine = engine_for(
        service, llm_provider="ollama", ollama_base_url=f"http://127.0.0.1:{free_port()}", llm_timeout=2.0
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
def test_local_smollm2_generates_a_real_answer(service):
    settings = configured(service.settings, llm_provider="local", llm_max_tokens=48)
    provider = resolve(settings)
    assert provider == Provider(name="local", model="SmolLM2-135M-Instruct")
    engine = engine_with(service, make_chat_model(settings, provider), provider)
    chunks, answer = answer_of(engine, "what is cache-aside?")
    assert answer.error is None and answer.mode == "notes"
    assert len(answer.text.split()) >= 3 and len(chunks) > 1


# ------------------------------------------------------------------------- honest local mode
class Recorder(BaseCallbackHandler):
    """The messages each chat model call received."""

    def __init__(self):
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        self.calls.append(messages[0])


def offer_turn(text: str, mode: str) -> AIMessage:
    return AIMessage(text, additional_kwargs={"details": {"mode": mode}})


OFFERED = "🐧 Linux Terminal"


def long_chat(turns: int) -> list[BaseMessage]:
    """A chat as the history store gives it back: the user's turns, the model's answers, and the
    app's own messages (a persona offer, a quoted extractive answer) in between."""
    history: list[BaseMessage] = []
    for n in range(turns // 2):
        history.append(HumanMessage(f"question {n}: " + "tell me more about caches and their eviction " * 12))
        if n % 5 == 0:
            history.append(
                offer_turn("This asks for a persona: 🐧 Linux Terminal. Use it in this chat", "persona-picked")
            )
        else:
            history.append(
                offer_turn(f"answer {n}: " + "an LRU cache evicts the least recently used item " * 12, "notes")
            )
    return history


def test_a_60_turn_chat_fits_a_2048_token_window_and_keeps_what_matters(service):
    settings = configured(service.settings, context_tokens=2048, llm_max_tokens=256)
    recorder = Recorder()
    model = GenericFakeChatModel(
        messages=iter(["Eviction drops the least recently used entry [1]."]), callbacks=[recorder]
    )
    engine = AnswerEngine(service.pipeline, service.composer, settings, model, Provider(name="openai", model="fake"))
    history = long_chat(60)
    engine.ask("and which eviction policy does the notes' cache section name?", history=history)
    for call in recorder.calls:  # the follow-up's rewrite, then the answer: each fits
        total = sum(estimate_tokens(str(m.content)) + 4 for m in call)
        assert total + settings.llm_max_tokens <= 2048, total
    sent = recorder.calls[-1]
    assert isinstance(sent[0], SystemMessage) and "[1]" in str(sent[0].content) + str(sent[-1].content)  # passages
    assert "which eviction policy" in str(sent[-1].content)  # the question itself
    assert "question 29:" in "".join(str(m.content) for m in sent)  # the newest turns are kept
    assert "question 0:" not in "".join(str(m.content) for m in sent)  # the oldest are dropped
    assert not any("This asks for a persona" in str(m.content) for c in recorder.calls for m in c)  # never offers


@pytest.mark.skipif(not local_available(), reason='local extra not installed: pip install -e ".[local]"')
def test_local_smollm2_plays_the_persona_without_echoing_offers_or_tags(service):
    settings = configured(service.settings, llm_provider="local", llm_max_tokens=40)
    provider = resolve(settings)
    model = make_chat_model(settings, provider)
    recorder = Recorder()
    model = model.with_config(callbacks=[recorder])
    engine = engine_with(service, model, provider)
    terminal = service.catalog.get("Linux Terminal")
    history = [
        HumanMessage("act as a linux terminal"),
        offer_turn("This asks for a persona: 🐧 Linux Terminal.", "persona-picked"),
    ]
    answer = engine.ask("pwd", history=history, persona=terminal)
    assert answer.error is None and answer.mode == "persona" and answer.text.strip()
    system = recorder.calls[0][0]
    assert isinstance(system, SystemMessage) and str(system.content).startswith("I want you to act as a linux terminal")
    assert not any("This asks for a persona" in str(m.content) for m in recorder.calls[0])
    assert "This asks for a persona" not in answer.text and "Use it in this chat" not in answer.text
    assert not re.search(r"<\|[^|>]*\|>|\[/?INST\]|</?s>|</?passages>", answer.text)  # no tag leaks


def test_a_provider_that_cannot_start_is_named_with_the_fix(tmp_path):
    settings = configured(make_settings(tmp_path), llm_provider="local", local_model_path=str(tmp_path / "gone.gguf"))
    from assistant.answer.providers import status

    reported = status(settings)
    assert reported.problem and ("gone.gguf" in reported.problem or "llama-cpp-python" in reported.problem)
    assert "cannot start" in reported.message and "make install EXTRAS=local" in reported.message
