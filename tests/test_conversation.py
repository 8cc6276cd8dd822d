"""A running chat: each turn decides its own context. A message complete on its own is answered
as in a new chat (no quote from the previous topic), off-topic gets nothing, a follow-up in any
language goes on with its topic, and "/notes" asks the notes in any chat, a persona's included.

The inputs are written here, not taken from any eval file."""

from __future__ import annotations

import json
import subprocess
import sys

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from assistant.answer.chains import AnswerEngine
from assistant.answer.providers import NONE, Provider
from tests.conftest import PROJECT

FAKE = Provider(name="openai", model="fake")


def engine(service, model=None) -> AnswerEngine:
    provider = FAKE if model is not None else NONE
    return AnswerEngine(
        service.pipeline,
        service.composer,
        service.settings,
        model,
        provider,
        context_model=service.context_model,
    )


def under(answer, heading: str) -> bool:
    return any(heading.casefold() in " / ".join(s.path).casefold() for s in answer.sources)


def test_a_new_question_after_another_topic_is_answered_on_its_own(service):
    history = [
        HumanMessage("how does sharding split my users table?"),
        AIMessage(
            "Sharding distributes data across different databases such that each database can only manage a "
            "subset of the data."
        ),  # fmt: skip
    ]
    answer = engine(service).ask("how does a content delivery network get files from my origin?", history=history)
    assert answer.mode == "extractive" and answer.searched == answer.question
    assert under(answer, "Content delivery network") and not under(answer, "Sharding")


def test_off_topic_mid_chat_gets_nothing_relevant(service):
    history = [
        HumanMessage("what does a load balancer do for my web servers?"),
        AIMessage("Load balancers distribute incoming client requests to computing resources."),
    ]
    for message in ("which wine goes with grilled salmon on a summer evening?", "thanks, that helps a lot!"):
        answer = engine(service).ask(message, history=history)
        assert answer.mode == "none" and answer.sources == (), (message, answer.text[:200])


def test_a_follow_up_after_a_question_in_another_language_keeps_its_topic(service):
    history = [
        HumanMessage("¿Cómo funciona la replicación maestro-esclavo en una base de datos?"),
        AIMessage("The master serves reads and writes, replicating writes to one or more slaves."),
    ]
    answer = engine(service).ask("and what can go wrong with it?", history=history)
    assert answer.mode == "extractive" and answer.searched != answer.question
    assert under(answer, "Master-slave replication") or under(answer, "Disadvantage(s): replication")
    assert not under(answer, "Load balancer") and not under(answer, "Sharding")


def test_a_follow_up_goes_on_instead_of_repeating_what_was_quoted(service):
    first = engine(service).ask("how does a write-through cache handle a write?")
    history = [HumanMessage(first.question), AIMessage(first.text)]
    follow = engine(service).ask("and what are the drawbacks of doing it that way?", history=history)
    assert under(follow, "Disadvantage(s): write through") or "disadvantage" in follow.text.casefold()
    said = {line.strip() for line in first.text.splitlines() if len(line.split()) > 4 and not line.startswith("**")}
    repeated = [line for line in follow.text.splitlines() if line.strip() in said]
    assert len(repeated) < len([x for x in follow.text.splitlines() if len(x.split()) > 4]), repeated


def test_notes_command_wins_in_a_persona_chat(service):
    persona = service.catalog.get("Linux Terminal")
    answer = engine(service).ask("/notes how does a reverse proxy differ from a load balancer?", persona=persona)
    assert answer.mode == "extractive" and answer.command == "notes" and answer.sources
    assert under(answer, "Reverse proxy")


def test_notes_command_in_a_persona_chat_with_a_model_gets_the_notes(service):
    persona = service.catalog.get("Linux Terminal")
    model = GenericFakeChatModel(messages=iter(["A reverse proxy centralizes internal services [1]."]))
    answer = engine(service, model).ask("/notes what does a reverse proxy do?", persona=persona)
    assert answer.mode == "notes" and answer.verified and under(answer, "Reverse proxy")


def test_the_model_gets_the_passages_the_turn_decided_on(service):
    """With a provider, a new topic mid-chat sends the model its own passages, not the history's."""
    history = [HumanMessage("what is sharding good for?"), AIMessage("Sharding spreads data over databases [1].")]
    model = GenericFakeChatModel(messages=iter(["Cache-aside loads entries on a miss [1]."]))
    answer = engine(service, model).ask("explain the cache-aside pattern", history=history)
    assert answer.sources and under(answer, "Cache-aside") and not under(answer, "Sharding")


def test_turn_searches_are_at_most_two(service, monkeypatch):
    """A turn with history is analysed twice at most: the message, and the message joined."""
    pipeline = service.pipeline
    analysed: list[str] = []
    read = pipeline._read_message

    def counting(text):
        analysed.append(text)
        return read(text)

    monkeypatch.setattr(pipeline, "_read_message", counting)
    pipeline._analyses.clear()
    engine(service).ask("what is a bloom of data in a data lake, and how do I size it?")
    assert len(analysed) == 1, analysed
    analysed.clear()
    pipeline._analyses.clear()
    history = [HumanMessage("what is consistent hashing used for?"), AIMessage("…")]
    engine(service).ask("and how are keys moved when a node leaves?", history=history)
    assert len(analysed) <= 2, analysed


def test_ask_batch_lines_carry_their_sources(bundled_settings, tmp_path):
    lines = [
        {"query": "how do reverse proxies help with security?"},
        {
            "query": "can you recommend a good pizza place near me?",
            "history": [{"role": "user", "content": "what is a reverse proxy?"}, {"role": "assistant", "content": "…"}],
        },
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
    out = subprocess.run([sys.executable, "-m", "assistant", "ask", "--batch", str(batch)], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    proxy, pizza = [json.loads(x) for x in out.stdout.splitlines()]
    assert proxy["sources"] and all({"path", "source", "first_line", "last_line"} <= set(s) for s in proxy["sources"])
    assert any("Reverse proxy" in " ".join(s["path"]) for s in proxy["sources"])
    assert pizza["sources"] == []


def test_a_follow_up_asking_again_for_what_was_quoted_still_gets_it(service):
    """An answer that already listed the drawbacks, then "and its disadvantages?": the drawbacks
    come again (what was quoted yields only to what is about as close)."""
    first = engine(service).ask("what does sharding a database mean?")
    history = [HumanMessage(first.question), AIMessage(first.text)]
    follow = engine(service).ask("so what are the downsides?", history=history)
    assert under(follow, "Disadvantage(s): sharding"), follow.text
    assert "Disadvantage(s): sharding" in follow.sources[0].path[-1], follow.text  # it leads with what it asks


def test_a_question_asked_again_is_asked_afresh(service):
    """The same question again (after a re-ingest, say) is searched on its own, not kept to the
    topic of its previous answer."""
    history = [HumanMessage("how do I keep a sourdough starter alive?"), AIMessage("From your notes on **Cache**: …")]
    answer = engine(service).ask("how do I keep a sourdough starter alive ?", history=history)
    assert answer.searched == answer.question and not under(answer, "Cache")
