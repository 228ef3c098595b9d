"""Several processes (``torchrun`` / ``accelerate launch``): shard the pool, gather in pool order, write once.

Launched as P processes, `select` splits the pool into P contiguous shards (the first ``N % P`` one row longer; no
padding rows are ever scored), each process scores its shard, and the outputs are gathered in pool order, so the
result is the single-process result for any pool size. The proxy is fitted on the main process only and sent to
the others as its saved files: the processes then score with one model even when training is not bit-for-bit
reproducible across processes or devices (fastText with several threads, a transformer on GPUs). Only the main
process writes; if its write fails the others fail with it instead of waiting.

CPU processes talk through gloo, GPUs through NCCL (each process on ``cuda:LOCAL_RANK``). Nothing here imports torch
unless the program runs in several processes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import DistributedError
from .io import scratch_dir

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Forming the process group: a peer that has not joined by then never will (a bad launch), so fail fast.
INIT_TIMEOUT_ENV, INIT_TIMEOUT_DEFAULT = "SVP_HF_DIST_INIT_TIMEOUT", 300
# Collectives: the other processes wait while the main one fits the proxy, which may take hours.
TIMEOUT_ENV, TIMEOUT_DEFAULT = "SVP_HF_DIST_TIMEOUT", 24 * 3600

_CURRENT: Distributed | None = None


@dataclass(frozen=True)
class Distributed:
    """The processes svp-hf runs in: ``rank`` of ``world_size``, their process ``group`` and the ``device`` that
    collective tensors live on (``cpu`` for gloo, ``cuda:LOCAL_RANK`` for NCCL)."""

    rank: int
    world_size: int
    group: Any
    device: Any

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, num_rows: int, rank: int | None = None) -> tuple[int, int]:
        """Rows ``[start, stop)`` of process ``rank`` (default: this one)."""
        return shard_bounds(num_rows, self.world_size, self.rank if rank is None else rank)

    # -- collectives ----------------------------------------------------------------------------------------
    def gather_rows(self, local: np.ndarray, num_rows: int) -> np.ndarray:
        """Every process's shard of a ``[n_r, ...]`` array, concatenated in rank (= pool) order, on every process.

        Shards are padded to the longest for the all-gather and the padding is cut off again: the result has exactly
        ``num_rows`` rows."""
        import torch
        import torch.distributed as dist

        local = np.ascontiguousarray(local)
        sizes = [self.shard(num_rows, r) for r in range(self.world_size)]
        longest = max(stop - start for start, stop in sizes)
        buf = torch.zeros((longest, *local.shape[1:]), dtype=_torch_dtype(local.dtype), device=self.device)
        buf[: local.shape[0]] = torch.from_numpy(local).to(self.device)
        parts = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(parts, buf, group=self.group)
        out = [p[: stop - start].cpu().numpy() for p, (start, stop) in zip(parts, sizes)]
        return np.concatenate(out, axis=0).astype(local.dtype, copy=False)

    def gather_variable(self, local: np.ndarray) -> np.ndarray:
        """Every process's ``[n_r, ...]`` array (any n_r), concatenated in rank order, on every process."""
        sizes = self.all_gather_array(np.array([local.shape[0]], dtype=np.int64))[:, 0]
        longest = int(sizes.max())
        padded = np.zeros((longest, *local.shape[1:]), dtype=local.dtype)
        padded[: local.shape[0]] = local
        parts = self.all_gather_array(padded)
        return np.concatenate([part[:n] for part, n in zip(parts, sizes)], axis=0)

    def broadcast_array(self, array: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
        """The main process's ``array`` (of known ``shape`` and ``dtype``) on every process."""
        import torch
        import torch.distributed as dist

        if self.is_main:
            t = torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(self.device)
        else:
            t = torch.empty(shape, dtype=_torch_dtype(np.dtype(dtype)), device=self.device)
        dist.broadcast(t, src=0, group=self.group)
        return t.cpu().numpy()

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """The main process's bytes on every process."""
        n = int(self.broadcast_array(np.array([len(data) if self.is_main else 0], dtype=np.int64), (1,), np.int64)[0])
        payload = np.frombuffer(bytearray(data), dtype=np.uint8) if self.is_main else None
        return self.broadcast_array(payload, (n,), np.uint8).tobytes()

    def all_gather_array(self, local: np.ndarray) -> np.ndarray:
        """Equal-shaped arrays from every process, stacked ``[world_size, ...]``."""
        import torch
        import torch.distributed as dist

        t = torch.from_numpy(np.ascontiguousarray(local)).to(self.device)
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t, group=self.group)
        return torch.stack(parts).cpu().numpy()

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier(group=self.group)

    def on_main(self, fn: Callable[[], T], what: str) -> T | None:
        """Run ``fn`` on the main process only; the others wait and fail too (naming the error) if it fails."""
        error = None
        result = None
        if self.is_main:
            try:
                result = fn()
            except BaseException as err:  # re-raised below, after the others know
                error = err
        message = f"{type(error).__name__}: {error}" if error is not None else ""
        message = self.broadcast_bytes(message.encode() if self.is_main else None).decode()
        if error is not None:
            raise error
        if message:
            raise DistributedError(f"{what} failed on the main process ({message})")
        return result

    def broadcast_proxy(self, proxy):
        """The main process's fitted proxy on every process (through its saved files). Returns the proxy to use."""
        from .proxies import Proxy

        blob = None
        if self.is_main:
            with scratch_dir("svp_proxy_") as tmp:
                proxy.save(tmp)
                blob = _pack_folder(Path(tmp))
        blob = self.broadcast_bytes(blob)
        if self.is_main:
            return proxy
        with scratch_dir("svp_proxy_") as tmp:
            _unpack_folder(blob, Path(tmp))
            return Proxy.load(tmp)


def shard_bounds(num_rows: int, world_size: int, rank: int) -> tuple[int, int]:
    """Contiguous rows of ``rank``: sizes differ by at most one, the first ``num_rows % world_size`` are longer."""
    base, extra = divmod(num_rows, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def current() -> Distributed | None:
    """The process group to work in, or ``None`` in a single process.

    Reuses a process group the program already formed (an ``Accelerator`` or a ``Trainer`` did); otherwise, when the
    launcher says there are several processes (``WORLD_SIZE`` > 1), forms one and raises `DistributedError` if it
    cannot (rather than every process doing the whole job on its own).
    """
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 and "torch.distributed" not in sys.modules:
        return None  # the common case: never import torch for it
    import torch.distributed as dist

    if not dist.is_available():
        if world > 1:
            raise DistributedError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
        return None
    if not dist.is_initialized():
        if world <= 1:
            return None
        _init_process_group(world)
    if dist.get_world_size() <= 1:
        return None
    if _CURRENT is None or _CURRENT.world_size != dist.get_world_size():
        _CURRENT = _build()
    return _CURRENT


def is_main_process() -> bool:
    """True in a single process and on rank 0 of several (without forming a process group)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def shutdown() -> None:
    """Leave the process group cleanly (a barrier, then destroy); gloo runs otherwise sometimes abort at exit."""
    global _CURRENT
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _CURRENT = None


def _init_process_group(world: int) -> None:
    import torch
    import torch.distributed as dist

    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={world} says this is one of {world} processes, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set, so they cannot form a process group. Launch with "
            f"`torchrun --nproc_per_node {world} -m svp_hf ...` or `accelerate launch --multi_gpu --num_processes "
            f"{world} -m svp_hf ...`, or unset WORLD_SIZE to run in one process"
        )
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0") or 0))
    backend = "nccl" if use_cuda else "gloo"
    seconds = _env_seconds(INIT_TIMEOUT_ENV, INIT_TIMEOUT_DEFAULT)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=seconds))
    except Exception as err:
        raise DistributedError(
            f"process {os.environ['RANK']} of WORLD_SIZE={world} could not form a process group with "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} within {seconds:g}s "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); every process must be started "
            f"by one launcher (torchrun / accelerate launch). Set {INIT_TIMEOUT_ENV} to wait longer"
        ) from err
    logger.info("formed a %s process group: rank %d of %d", backend, dist.get_rank(), world)


def _build() -> Distributed:
    import torch
    import torch.distributed as dist

    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    # A group of its own with a long timeout: the others wait in a collective while the main process fits the proxy.
    group = dist.new_group(timeout=timedelta(seconds=_env_seconds(TIMEOUT_ENV, TIMEOUT_DEFAULT)))
    return Distributed(dist.get_rank(), dist.get_world_size(), group, device)


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return float(default)
    try:
        seconds = float(value)
    except ValueError:
        raise DistributedError(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise DistributedError(f"{name} must be positive, got {value!r}")
    return seconds


def _torch_dtype(dtype: np.dtype):
    import torch

    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def _pack_folder(folder: Path) -> bytes:
    """A folder's files as one byte string: per file, name length, name, size, content (no pickle)."""
    chunks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix().encode()
        data = path.read_bytes()
        chunks += [len(name).to_bytes(8, "little"), name, len(data).to_bytes(8, "little"), data]
    return b"".join(chunks)


def _unpack_folder(blob: bytes, folder: Path) -> None:
    pos = 0
    while pos < len(blob):
        n = int.from_bytes(blob[pos : pos + 8], "little")
        name = blob[pos + 8 : pos + 8 + n].decode()
        pos += 8 + n
        size = int.from_bytes(blob[pos : pos + 8], "little")
        target = folder / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise DistributedError(f"refusing to unpack {name!r} outside the proxy folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob[pos + 8 : pos + 8 + size])
        pos += 8 + size
