"""Evaluation across the processes `torchrun` starts: who this process is, its shard, and gathers in order.

`torchrun --nproc_per_node N -m zsbench eval ...` (and multi-node torchrun) sets RANK,
WORLD_SIZE and LOCAL_RANK in each process; zsbench joins torch.distributed's default process
group (gloo on CPUs, nccl when the backend runs on CUDA) and every rank encodes a contiguous run
of whole batches of the images (and of the length-sorted prompts and captions), so each
embedding is the one a single process computes. Gathers concatenate the ranks' rows in rank
order, so the gathered rows are in dataset order and the metrics are those of one process.
Without WORLD_SIZE (or with WORLD_SIZE=1) the `SINGLE` group turns every operation into a no-op.

A rank that raises leaves the others blocked in (or failing at) their next collective; torchrun
then stops them and reports the failing rank's error. Only rank 0 writes, after a barrier that
every rank reaches only once its own part is done, so a failure never leaves a result behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from zsbench.errors import DistributedError

# How long a rank that lost its peers waits before failing: torchrun then sees the rank that failed
# first exit first, names it as the root cause and stops this one (it times failures to the second).
PEER_FAILURE_GRACE_S = 5.0


@dataclass(frozen=True)
class RankGroup:
    """This process's place among the evaluating processes; `device` is where collectives run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_process_group: bool = False  # join_group initialised torch.distributed's default group

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes results and caches."""
        return self.rank == 0

    def shard(self, count: int, unit: int = 1) -> range:
        """This rank's contiguous slice of `count` items, cut at multiples of `unit` (a batch size:
        then every batch is the one a single process would form, and its embeddings are the same
        to the bit). Slices differ by at most one unit; with fewer units than ranks, by one item."""
        if -(-count // unit) < self.world_size:
            unit = 1
        units = -(-count // unit)
        start, stop = self.rank * units // self.world_size, (self.rank + 1) * units // self.world_size
        return range(min(start * unit, count), min(stop * unit, count))

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's `rows` (shapes equal but for the first dimension), concatenated in rank order,
        on every rank, on the device `rows` came from."""
        if self.world_size == 1:
            return rows
        sent = rows.to(self.device).contiguous()
        counts = [torch.zeros(1, dtype=torch.long, device=self.device) for _ in range(self.world_size)]
        with self._collective("gathering embeddings"):
            dist.all_gather(counts, torch.tensor([len(sent)], device=self.device))
        sizes = [int(count.item()) for count in counts]
        # all_gather needs equal shapes: pad every rank's rows to the longest, then trim.
        padded = torch.zeros((max(sizes), *sent.shape[1:]), dtype=sent.dtype, device=self.device)
        padded[: len(sent)] = sent
        received = [torch.empty_like(padded) for _ in range(self.world_size)]
        with self._collective("gathering embeddings"):
            dist.all_gather(received, padded)
        return torch.cat([part[:size] for part, size in zip(received, sizes)]).to(rows.device)

    def gather_texts(self, texts: list[str]) -> list[str]:
        """Every rank's `texts`, concatenated in rank order, on every rank (sent as UTF-8 JSON bytes)."""
        if self.world_size == 1:
            return texts
        data = torch.frombuffer(bytearray(json.dumps(texts).encode("utf-8")), dtype=torch.uint8)
        sizes = self.gather_rows(torch.tensor([len(data)]))
        chunks = self.gather_rows(data).split(sizes.tolist())
        return [text for chunk in chunks for text in json.loads(bytes(chunk.tolist()).decode("utf-8"))]

    def any(self, flags: torch.Tensor) -> torch.Tensor:
        """Element-wise OR of a bool tensor over the ranks (so every rank makes the same decision)."""
        if self.world_size == 1:
            return flags
        combined = flags.to(self.device, torch.int32)
        with self._collective("agreeing on what to compute"):
            dist.all_reduce(combined, op=dist.ReduceOp.MAX)
        return combined.bool().to(flags.device)

    def all(self, flag: bool) -> bool:
        """True when `flag` holds on every rank."""
        return not bool(self.any(torch.tensor([not flag])).item())

    def gather_values(self, values: list[float]) -> list[list[float]]:
        """Every rank's `values` (same length on every rank), in rank order."""
        rows = self.gather_rows(torch.tensor([values], dtype=torch.float64))
        return rows.tolist()

    def barrier(self) -> None:
        """Returns once every rank got here (fails if one of them died on the way)."""
        if self.world_size > 1:
            with self._collective("waiting for every rank to finish"):
                dist.barrier()

    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Turns the runtime's error when another rank died (connection closed, timeout) into one line."""
        try:
            yield
        except RuntimeError as err:  # torch.distributed.DistBackendError and gloo's errors are RuntimeErrors
            time.sleep(PEER_FAILURE_GRACE_S)
            raise DistributedError(
                f"Rank {self.rank} of {self.world_size} lost the other ranks while {what} ({str(err).splitlines()[0]}). "
                "Another rank failed first: its error (torchrun's 'Root Cause') says why. No result was written."
            ) from err


SINGLE = RankGroup()


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError as err:
        raise DistributedError(
            f"The environment variable {name}={value!r} is not an integer (WORLD_SIZE is set, so this looks like a "
            "torchrun process). Start distributed runs with `torchrun --nproc_per_node N -m zsbench eval ...`, "
            "which sets RANK, WORLD_SIZE and LOCAL_RANK."
        ) from err


def rank_from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) without WORLD_SIZE."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    if not 0 <= rank < world_size:
        raise DistributedError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world_size}); start the run with torchrun.")
    return rank, world_size, local_rank


def rank_device(device: str, local_rank: int) -> str:
    """The device of this rank: ``cuda`` becomes ``cuda:LOCAL_RANK`` (one GPU per process); others are kept."""
    return f"cuda:{local_rank}" if device == "cuda" else device


def join_group(device: str) -> RankGroup:
    """This process's `RankGroup`, joining torch.distributed's default group when torchrun started
    several processes (nccl when `device` is CUDA, else gloo). Returns `SINGLE` outside torchrun."""
    rank, world_size, local_rank = rank_from_env()
    if world_size == 1:
        return SINGLE
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    initialise = not dist.is_initialized()  # a caller's own process group is used, and left to it
    if initialise:
        dist.init_process_group("nccl" if cuda else "gloo")
    collective_device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    return RankGroup(rank, world_size, local_rank, collective_device, owns_process_group=initialise)


def leave_group(group: RankGroup) -> None:
    """Destroys the default process group if `join_group` created it (no-op otherwise)."""
    if group.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()
