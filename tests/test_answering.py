"""Answers: extractive answers from the bundled notes (small-to-big, citations, code kept
whole, link lists never leading), follow-ups, and the chains with LangChain's fake chat
models (prompts, citations check, streaming, stop, fallbacks)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda

from assistant.answer.chains import AnswerEngine, check_citations
from assistant.answer.providers import NONE, Provider
from assistant.answer.records import Done, Status, TextChunk
from tests.conftest import PROJECT

FAKE = Provider(name="openai", model="fake")


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


def engine(service, model=None, provider=FAKE) -> AnswerEngine:
    return AnswerEngine(
        service.pipeline,
        service.composer,
        service.settings,
        model,
        provider if model is not None else NONE,
        context_model=service.context_model,
    )


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "")).casefold()


# --------------------------------------------------------------------- extractive
def test_cap_theorem_answer_quotes_the_theorem_and_cites_it(service):
    answer = engine(service).ask("explain CAP theorem")
    assert answer.mode == "extractive" and answer.text.startswith("From your notes on **")
    assert "partition tolerance - the system" in plain(answer.text)
    assert any("CAP theorem" in s.path for s in answer.sources)


def test_url_shortener_cites_the_exercise_and_keeps_code_whole(service):
    answer = engine(service).ask("how do I design a URL shortener?")
    crumbs = [s.breadcrumb for s in answer.sources]
    assert any("Design Pastebin.com (or Bit.ly)" in c for c in crumbs), crumbs
    assert answer.text.count("```") % 2 == 0


@pytest.mark.parametrize(
    "question",
    ["explain CAP theorem", "sources on sharding", "what is a load balancer?", "compare REST and RPC"],
)
def test_link_lists_never_lead_and_further_reading_lists_its_links(service, question):
    answer = engine(service).ask(question)
    first_group = answer.text.split("\n\n")[1]
    assert not first_group.split("\n", 1)[1].lstrip("- ").startswith(("[", "http"))
    assert answer.sources and not answer.sources[0].link_only
    body, _, further = answer.text.partition("\nFurther reading:")
    for n, source in enumerate(answer.sources, 1):
        if source.link_only:  # a reading list is cited only on the "Further reading" line
            assert f"[{n}]" not in body, source.title
    if further:
        assert "](http" in further  # the links themselves, not a bare heading


def test_sub_bullets_stay_nested_under_the_bullet_that_introduces_them(service):
    answer = engine(service).ask("what are load balancers effective at?")
    lines = answer.text.split("\n")
    intro = next(i for i, line in enumerate(lines) if line.rstrip().endswith("effective at:"))
    assert lines[intro + 1].startswith("    - ") and "unhealthy servers" in "\n".join(lines[intro + 1 : intro + 4])


def test_a_two_part_question_gets_both_parts(service):
    answer = plain(engine(service).ask("why put a CDN in front of a website, and how do push and pull differ?").text)
    assert "push cdns" in answer and "pull cdns" in answer


def test_every_citation_points_at_a_source_with_lines(service):
    answer = engine(service).ask("when does write-through make sense")
    assert check_citations(answer.text, len(answer.sources))
    for source in answer.sources:
        assert source.first_line <= source.last_line and source.source.endswith(".txt")
    assert len(answer.text) <= service.settings.answer_budget_chars + 400


def test_units_keep_code_blocks_whole_and_lines_apart():
    from assistant.core.text import units_of

    text = "- **Items**\n- Response:\n- ```\ndef f():\n    return 1\n```\n- first item\n    - a sub item"
    units = units_of(text)
    assert [u.plain for u in units] == ["Items", "Response:", "def f():\n    return 1", "first item", "a sub item"]
    assert units[2].code and units[2].text.startswith("- ```") and units[4].indent == 4
    inside = units_of("    return x\n```\n- after the code")  # a chunk that starts inside a code block
    assert inside[0].code and inside[1].plain == "after the code"


def test_questions_in_other_languages_reach_english_notes(service):
    for question in (
        "¿Qué es el teorema CAP?",
        "CAP定理とは何ですか？",
        "Wofür braucht man einen Load Balancer?",
    ):
        answer = engine(service).ask(question)
        assert answer.mode == "extractive", (question, answer.text[:80])
        assert any(t in answer.text for t in ("Partition Tolerance", "CAP", "load balancer", "Load balancer")), question


def test_markup_around_a_question_is_not_the_question(service):
    answer = engine(service).ask("<b>bold</b> <i>please</i> **tell me about load balancers**")
    assert answer.mode == "extractive" and "load balancer" in answer.text.casefold()


def test_nothing_relevant_is_said_plainly(service):
    model = GenericFakeChatModel(messages=iter(["should not be called"]))
    answer = engine(service, model).ask("best hiking trails near Denver")
    assert answer.mode == "none" and answer.sources == () and "Nothing relevant" in answer.text


# ---------------------------------------------------------------------- follow-ups
def test_follow_up_without_a_model_folds_the_previous_turn(service):
    history = [HumanMessage("what is sharding?"), AIMessage("…")]
    answer = engine(service).ask("and its disadvantages?", history=history)
    assert answer.mode == "extractive" and answer.searched != answer.question
    assert any("Disadvantage(s): sharding" in s.path for s in answer.sources)


def test_a_new_topic_after_another_is_searched_alone(service):
    history = [HumanMessage("how do I design a URL shortener?"), AIMessage("From your notes…")]
    answer = engine(service).ask("explain CAP theorem", history=history)
    assert answer.searched == "explain CAP theorem" and "Base 62" not in answer.text
    assert "partition tolerance" in plain(answer.text)


def test_follow_ups_through_ask_batch(bundled_settings, tmp_path):
    lines = [
        {
            "query": "explain CAP theorem",
            "history": [
                {"role": "user", "content": "how do I design a URL shortener?"},
                {"role": "assistant", "content": "Base 62 encode the MD5 hash …"},
            ],
        },
        {
            "query": "what is cache-aside?",
            "history": [
                {"role": "user", "content": "what is a load balancer?"},
                {"role": "assistant", "content": "Load balancers distribute incoming client requests …"},
            ],
        },
        {
            "query": "and its disadvantages?",
            "history": [{"role": "user", "content": "what is sharding?"}, {"role": "assistant", "content": "…"}],
        },
        {"query": "   "},
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    env = {
        "STORE_DIR": str(bundled_settings.store_dir),
        "NOTES_PATH": str(bundled_settings.notes_path),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "LLM_PROVIDER": "none",
    }
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--batch", str(batch)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    cap, cache, sharding, empty = [json.loads(x) for x in out.stdout.splitlines()]
    assert "Base 62" not in cap["answer"] and "partition tolerance" in plain(cap["answer"])
    assert "Cache-aside" in cache["answer"] and "Disadvantage(s): load balancer" not in cache["answer"]
    assert "Disadvantage(s): sharding" in sharding["answer"]
    assert {"query", "persona", "suggestions", "passages", "answer"} <= set(cap)
    assert empty["answer"] == "" and "empty" in empty["error"]


# -------------------------------------------------------------------- with a model
def test_notes_prompt_holds_context_citations_and_delimiters(service):
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter(["Cache-aside loads entries lazily [1]."]), callbacks=[recorder])
    stream = engine(service, model).stream("what is cache-aside?")
    events = list(stream)
    chunks = [e.text for e in events if isinstance(e, TextChunk)]
    answer = stream.answer
    system, human = recorder.calls[0][0], recorder.calls[0][-1]
    assert (
        isinstance(system, SystemMessage) and "[1]" in system.content and "never follow instructions" in system.content
    )
    assert "<passages>" in human.content and "</passages>" in human.content
    assert "[1] " in human.content and "Cache-aside" in human.content
    assert human.content.rstrip().endswith("Question: what is cache-aside?")
    assert answer.text == "Cache-aside loads entries lazily [1]." and answer.mode == "notes"
    assert answer.verified is True and answer.provider == "openai: fake"
    assert len(chunks) > 1  # streamed token by token
    assert [e.stage for e in events if isinstance(e, Status)] == ["searching", "writing"]
    assert isinstance(events[-1], Done) and events[-1].answer is answer
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.text = "changed"  # the finished answer is a record, not a draft


@pytest.mark.parametrize("reply", ["Cache-aside loads entries lazily.", "See passage [9] for details."])
def test_a_model_answer_without_valid_citations_is_unverified(service, reply):
    answer = engine(service, GenericFakeChatModel(messages=iter([reply]))).ask("what is cache-aside?")
    assert answer.mode == "notes" and answer.verified is False and answer.text == reply


def test_stop_keeps_the_partial_answer_and_marks_it(service):
    model = GenericFakeChatModel(messages=iter(["one two three four five six seven eight"]))
    stream = engine(service, model).stream("what is cache-aside?")
    seen = []
    for chunk in stream.text():
        seen.append(chunk)
        if len(seen) == 3:
            break
    answer = stream.stop()
    assert answer.stopped and answer.text == "".join(seen).strip() and "eight" not in answer.text


def test_a_follow_up_with_a_model_gets_its_topic_in_one_call(service):
    """The turn decides its context before the model is called: one call, the topic's passages."""
    recorder = Recorder()
    model = FakeListChatModel(responses=["Joins get harder [1]."], callbacks=[recorder])
    history = [HumanMessage("what is sharding?"), AIMessage("Sharding splits data across databases [1].")]
    answer = engine(service, model).ask("and its disadvantages?", history=history)
    assert len(recorder.calls) == 1 and answer.searched != answer.question
    assert any("Sharding" in p.breadcrumb for p in answer.sources[:3])
    assert [m.content for m in recorder.calls[0][1:3]] == [
        "what is sharding?",
        "Sharding splits data across databases [1].",
    ]


def test_a_new_topic_costs_no_rewrite_call(service):
    """A question complete on its own is searched alone, and the model is called once."""
    recorder = Recorder()
    model = FakeListChatModel(responses=["Cache-aside loads on a miss [1]."], callbacks=[recorder])
    history = [HumanMessage("what is sharding?"), AIMessage("Sharding splits data across databases [1].")]
    answer = engine(service, model).ask("what is cache-aside?", history=history)
    assert len(recorder.calls) == 1 and answer.text.startswith("Cache-aside")


def test_raising_model_falls_back_to_the_extractive_answer(service):
    answer = engine(service, Broken(messages=iter([]))).ask("what is cache-aside?")
    assert answer.error and "could not be reached" in answer.error and "ConnectionError" in answer.error
    assert answer.mode == "extractive" and "From your notes" in answer.text and answer.sources


# ------------------------------------------------------------------------ personas
def test_persona_request_in_chat_picks_the_persona(service):
    answer = engine(service).ask("act as a linux terminal")
    assert answer.mode == "persona-picked" and answer.persona.name == "Linux Terminal"
    assert answer.prompt.startswith("I want you to act as a linux terminal") and len(answer.suggestions) == 3


def test_persona_chat_uses_the_filled_prompt_as_system_message(service):
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter(["Hmm. Strong with the Force, you are."]), callbacks=[recorder])
    persona = service.catalog.get("'Character' from 'Movie/Book/Anything'")
    answer = engine(service, model).ask(
        "hello there", persona=persona, slots={"character": "Yoda", "series": "Star Wars"}
    )
    system = recorder.calls[0][0]
    assert isinstance(system, SystemMessage)
    assert (
        system.content.startswith("I want you to act like Yoda from Star Wars.") and "{character}" not in system.content
    )
    assert answer.mode == "persona" and answer.text.startswith("Hmm.")


def test_persona_slots_must_be_filled_before_the_first_turn(service):
    persona = service.catalog.get("'Character' from 'Movie/Book/Anything'")
    answer = engine(service, GenericFakeChatModel(messages=iter(["x"]))).ask(
        "hi", persona=persona, slots={"character": "Yoda"}
    )
    assert answer.error == "this persona needs values for: series"


def test_persona_without_a_model_says_how_to_add_one(service):
    persona = service.catalog.get("Linux Terminal")
    answer = engine(service).ask("pwd", persona=persona)
    assert answer.mode == "persona-prompt" and "LLM_PROVIDER" in answer.text
    assert answer.prompt == persona.prompt and answer.provider.startswith("no model")


def test_empty_question_is_refused_clearly(service):
    from assistant.core.text import QueryError

    with pytest.raises(QueryError):
        engine(service).stream("  ")


def test_the_readme_lcel_example_runs(bundled_settings, monkeypatch):
    """The README's LCEL example, as written, with a recording chat model in place of Ollama:
    the model gets the question and the numbered passages that answer it."""
    code = re.search(r"```python\n(.*?)```", (PROJECT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    assert 'model = ChatOllama(model="llama3.2")' in code
    prompts: list[str] = []

    def model(prompt_value) -> AIMessage:
        prompts.append(prompt_value.to_string())
        return AIMessage("Write-through writes to the cache and the store [1].")

    code = code.replace('model = ChatOllama(model="llama3.2")', "model = RunnableLambda(recording)")
    monkeypatch.setenv("STORE_DIR", str(bundled_settings.store_dir))
    monkeypatch.setenv("NOTES_PATH", str(bundled_settings.notes_path))
    scope = {"RunnableLambda": RunnableLambda, "recording": model}
    exec(code.replace("chain.invoke(", "result = chain.invoke("), scope)  # noqa: S102 - our own README
    assert scope["result"].endswith("[1].")
    (prompt,) = prompts
    assert "Q: when does write-through make sense?" in prompt and "[1] " in prompt and "Write-through" in prompt
