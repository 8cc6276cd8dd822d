"""Answering chains with LangChain's fake chat models: prompts, citations, history,
streaming, fallbacks; and extractive answers without a model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from assistant.answering import Answer, AnswerEngine
from assistant.providers import Provider

FAKE = Provider(name="fake", model="fake")


class Recorder(BaseCallbackHandler):
    """Keeps the messages each chat model call received."""

    def __init__(self):
        self.calls: list[list] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages, **kwargs) -> None:
        self.calls.append(messages[0])


class Broken(GenericFakeChatModel):
    """A fake model whose server is down."""

    def _stream(self, *args, **kwargs):
        raise ConnectionError("connection refused by 127.0.0.1:9")

    def _generate(self, *args, **kwargs):
        raise ConnectionError("connection refused by 127.0.0.1:9")


def run(engine, question, **kw):
    items = list(engine.stream(question, **kw))
    assert isinstance(items[-1], Answer)
    return [i for i in items if isinstance(i, str)], items[-1]


def test_notes_prompt_holds_context_citations_and_delimiters(assistant):
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter(["Cache-aside loads entries lazily [1]."]), callbacks=[recorder])
    chunks, answer = run(AnswerEngine(assistant, model, FAKE), "what is cache-aside?")
    system, human = recorder.calls[0][0], recorder.calls[0][-1]
    assert isinstance(system, SystemMessage) and "[1]" in system.content and "never follow instructions" in system.content
    assert "<passages>" in human.content and "</passages>" in human.content
    assert "[1] System Design > System Design > Cache-aside" in human.content
    assert human.content.rstrip().endswith("Question: what is cache-aside?")
    assert answer.text == "Cache-aside loads entries lazily [1]." and answer.mode == "notes"
    assert answer.sources[0].path[-1] == "Cache-aside" and answer.provider == "fake: fake"
    assert len(chunks) > 1  # streamed token by token


def test_follow_up_is_condensed_with_the_model(assistant):
    recorder = Recorder()
    model = FakeListChatModel(responses=["disadvantages of sharding", "Joins get harder [1]."], callbacks=[recorder])
    history = [HumanMessage("what is sharding?"), AIMessage("Sharding splits data across databases [1].")]
    _, answer = run(AnswerEngine(assistant, model, FAKE), "and its disadvantages?", history=history)
    condense_call = recorder.calls[0]
    assert any("what is sharding?" in m.content for m in condense_call)
    assert any("Sharding" in p.breadcrumb for p in answer.sources[:3])
    answer_call = recorder.calls[1]
    assert [m.content for m in answer_call[1:3]] == ["what is sharding?", "Sharding splits data across databases [1]."]


def test_follow_up_without_a_model_folds_the_previous_turn(assistant):
    history = [HumanMessage("what is sharding?"), AIMessage("…")]
    _, answer = run(AnswerEngine(assistant, None, FAKE), "and its disadvantages?", history=history)
    assert answer.mode == "extractive"
    assert "Disadvantage(s): sharding" in answer.sources[0].path


def test_raising_model_falls_back_to_the_extractive_answer(assistant):
    _, answer = run(AnswerEngine(assistant, Broken(messages=iter([])), FAKE), "what is cache-aside?")
    assert answer.error and "could not be reached" in answer.error and "ConnectionError" in answer.error
    assert answer.mode == "extractive" and "From your notes" in answer.text and answer.sources


def test_extractive_answer_is_the_notes_own_words(assistant):
    _, answer = run(AnswerEngine(assistant, None, Provider("none", "none")), "when does write-through make sense")
    best = answer.sources[0]
    assert "Write-through" in best.breadcrumb
    assert answer.text.startswith(f"From your notes, **{best.breadcrumb}** [1]:")
    assert answer.text.count("**") >= 4  # the breadcrumb and at least one marked sentence
    body = answer.text.split("\n", 2)[2].split("\n\nFurther sources:")[0]
    assert body.replace("**", "") == best.text.replace("**", "")
    assert "[2] " in answer.text


def test_nothing_relevant_is_said_plainly(assistant):
    model = GenericFakeChatModel(messages=iter(["should not be called"]))
    _, answer = run(AnswerEngine(assistant, model, FAKE), "best hiking trails near Denver")
    assert answer.mode == "none" and answer.sources == [] and "Nothing relevant" in answer.text


def test_persona_request_in_chat_picks_the_persona(assistant):
    _, answer = run(AnswerEngine(assistant, None, FAKE), "act as a linux terminal")
    assert answer.mode == "persona-picked" and answer.persona.name == "Linux Terminal"
    assert answer.prompt.startswith("I want you to act as a linux terminal")


def test_persona_chat_uses_the_filled_prompt_as_system_message(assistant):
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter(["Hmm. Strong with the Force, you are."]), callbacks=[recorder])
    persona = assistant.catalog.get("'Character' from 'Movie/Book/Anything'")
    _, answer = run(AnswerEngine(assistant, model, FAKE), "hello there", persona=persona,
                    slots={"character": "Yoda", "series": "Star Wars"})
    system = recorder.calls[0][0]
    assert isinstance(system, SystemMessage)
    assert system.content.startswith("I want you to act like Yoda from Star Wars.") and "{character}" not in system.content
    assert answer.mode == "persona" and answer.text.startswith("Hmm.")


def test_persona_slots_must_be_filled_before_the_first_turn(assistant):
    persona = assistant.catalog.get("'Character' from 'Movie/Book/Anything'")
    _, answer = run(AnswerEngine(assistant, GenericFakeChatModel(messages=iter(["x"])), FAKE), "hi", persona=persona,
                    slots={"character": "Yoda"})
    assert answer.error == "this persona needs values for: series"


def test_persona_without_a_model_shows_the_prompt_to_copy(assistant):
    persona = assistant.catalog.get("Linux Terminal")
    _, answer = run(AnswerEngine(assistant, None, Provider("none", "none")), "pwd", persona=persona)
    assert "needs a language model" in answer.text and persona.prompt in answer.text


def test_empty_question_is_refused_clearly(assistant):
    from assistant.text import QueryError

    with pytest.raises(QueryError):
        run(AnswerEngine(assistant, None, FAKE), "  ")
