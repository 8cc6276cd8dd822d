"""Extractive answer latency (warm), and the local model's time to first token, speed and
how often its answers cite their passages correctly (BENCH_LOCAL=0 skips the local model).

`Service.stream(q).answer` with no language model (a quoted answer), each question timed as a
new message (the pipeline's LRU of recent analyses emptied first). The figure is set beside the
plain retrieval of the same questions measured in the same run, since the machine is shared
and noisy. Target (issue 17): extractive median <= 100 ms.
"""

from __future__ import annotations

import os
import time

from common import FALLBACK_QUERIES, bench_store, emit, fresh_message, row, summary

# the notes questions of the bench's own queries, and one more open question
QUESTIONS = [*FALLBACK_QUERIES[:9], "what kinds of things should I cache"]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.answer.chains import AnswerEngine
    from assistant.answer.providers import local_available, make_chat_model, resolve
    from assistant.core.settings import Settings
    from assistant.service import Service
    from ingest.pipeline import run_ingest

    settings = Settings(_env_file=None, store_dir=bench_store(), llm_provider="none")
    run_ingest(settings)
    service = Service(settings)
    for q in QUESTIONS[:3]:
        _ = service.stream(q).answer
    extractive, retrieval, modes = [], [], {}
    for _ in range(int(os.environ.get("BENCH_ROUNDS", "3"))):
        for q in QUESTIONS:
            fresh_message(service.pipeline)
            t = time.perf_counter()
            service.search(q)
            retrieval.append(time.perf_counter() - t)
            fresh_message(service.pipeline)
            t = time.perf_counter()
            answer = service.stream(q).answer
            extractive.append(time.perf_counter() - t)
            modes[answer.mode] = modes.get(answer.mode, 0) + 1
    ex = summary(extractive)
    result = {
        "benchmark": "answer",
        "extractive": ex,
        "retrieval_alone": summary(retrieval),
        "answer_modes": modes,
        "rows": [
            row(
                "extractive answer, `service.stream(q).answer` median",
                baseline=summary(retrieval)["median_ms"],
                now=ex["median_ms"],
                unit="ms",
                target="<= 100 ms",
                met=ex["median_ms"] <= 100,
                note=f"baseline: the search alone, same questions, same run; p95 {ex['p95_ms']} ms",
            )
        ],
    }

    if os.environ.get("BENCH_LOCAL", "1") == "0":
        result["local"] = "skipped (BENCH_LOCAL=0)"
    elif local_available():
        local_settings = settings.model_copy(update={"llm_provider": "local", "llm_max_tokens": 128})
        provider = resolve(local_settings)
        t = time.perf_counter()
        model = make_chat_model(local_settings, provider)
        load_s = time.perf_counter() - t
        local = AnswerEngine(service.pipeline, service.composer, local_settings, model, provider)
        ttft, rates, verified = [], [], []
        for q in QUESTIONS:
            start = time.perf_counter()
            first = None
            stream = local.stream(q)
            for _ in stream:
                first = first or time.perf_counter()
            end = time.perf_counter()
            answer = stream.answer
            ttft.append((first or end) - start)
            n_tokens = len(model.client.tokenize(answer.text.encode()))
            rates.append(n_tokens / max(end - (first or end), 1e-6))
            verified.append(bool(answer.verified))
        result["local"] = {
            "model": provider.model,
            "load_s": round(load_s, 2),
            "time_to_first_token": summary(ttft),
            "tokens_per_second_median": round(sorted(rates)[len(rates) // 2], 1),
            "answers_citing_only_given_passages": f"{sum(verified)}/{len(verified)}",
        }
    else:
        result["local"] = "not installed (pip install -e '.[local]')"
    emit(result)


if __name__ == "__main__":
    main()
