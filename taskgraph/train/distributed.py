"""Data-parallel training under ``torchrun``: one process per device, every step's batch split across them.

    taskgraph train SPEC --out RUN --nproc-per-node 2                            # one machine (train.launch)
    torchrun --nproc_per_node 2 -m taskgraph train SPEC --out RUN                 # the same processes
    torchrun --nnodes 2 --node_rank 0 --rdzv_endpoint HOST:29500 --nproc_per_node 8 -m taskgraph train ...

:func:`~taskgraph.train.train` calls :func:`data_parallel_from_env`; when torchrun started more than one
process (``WORLD_SIZE`` > 1) every process joins one process group — gloo on CPU, nccl on CUDA (device
``cuda:LOCAL_RANK``) — and each step runs like this on every rank:

1. the **global batch** (``training.batch_size`` examples) is drawn by the same seeded sampler on every
   rank, so every rank holds the same batch; each keeps a contiguous slice of it (:meth:`DataParallel.shard`,
   sizes differing by at most one), padded as wide as the whole batch;
2. the router is asked for the **global batch's** distinct tasks, with its random draws (Poly's relaxed
   Bernoulli) seeded by ``(training.seed, step)`` — the same on every rank — while dropout draws from a
   per-rank seed ``(training.seed, step, rank)``. So every rank computes the same routing, the same router
   regularizer, and runs the head of every task in the global batch (a head whose task has no example in
   this rank's slice gets an exact zero gradient): the set of parameters that receive a gradient is the
   same on every rank, by construction;
3. the loss is scaled so that the ranks' gradients **sum** to the one-process gradient of the whole batch:
   ``task loss × n_rank / B + regularizer / W``; after ``backward`` one all-reduce sums a flat buffer of
   every trainable parameter's gradient (zeros where a rank has none) and one presence flag per parameter.
   A parameter that no rank gave a gradient keeps ``grad = None``, so AdamW skips it exactly as it does
   in one process (zero gradients would still move it by momentum and weight decay). Gradient clipping and
   the optimizer step then run identically on every rank, so the weights stay equal without broadcasts.

Why not ``DistributedDataParallel``: its reducer needs every parameter to get a gradient on every rank or
``find_unused_parameters=True`` (a graph traversal every step, and gradients of unused heads set to zero,
not None), and it overlaps communication with a backward pass whose trainable part is a few percent of the
model here (LoRA inventories, router, heads: one all-reduce of a few MB per step). One explicit all-reduce is
exact (tests: two processes of batch 8 equal one of batch 16 to 1e-6 in gradients and weights), cannot hang
on an unused parameter, and leaves ``torch.compile`` of the step free of DDP's graph splitting.

Every process holds the whole model; ``training.parallel: fsdp`` shards the frozen base across them and leaves this
step as it is (:mod:`taskgraph.train.fsdp`).

Rank 0 alone writes the run folder (marker, lock, log, checkpoints, best / final model, plots, TensorBoard);
on ``--resume`` it reads the checkpoint and broadcasts the weights, optimizer state and sampler state, so the
other ranks — on other machines too — need only the spec and the data. The global batch and the per-step
seeds make a run resumable with another number of processes. A process that dies ends the others: gloo
sees its connection close at the next collective, and every collective has a timeout
(``TASKGRAPH_DIST_TIMEOUT`` seconds, default 1800, at most a week: rank 0 validates alone while the others wait); torchrun
also stops the remaining processes (SIGTERM, which raises :class:`DistributedError` here). Checkpoints are
written to a staging folder and renamed, so the last one stays whole.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import json
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from taskgraph.train.process_env import (
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    TIMEOUT_ENV,
    DistributedError,
    ProcessPlace,
    collective_timeout,
    note_stopped_by_peer,
    process_place,
    stopped_by_peer,
)

FAULT_RANK = "TASKGRAPH_FAULT_RANK"  # tests: only this rank exits at TASKGRAPH_FAULT_AT_STEP
R = TypeVar("R")


@dataclass
class DataParallel:
    """This process's place in a data-parallel run, and the collectives the training loop uses.

    Args:
        rank: this process, ``0 .. world - 1`` (rank 0 writes the run folder).
        world: the number of processes.
        device: where this process trains (``cuda:LOCAL_RANK`` on CUDA).
        backend: ``gloo`` or ``nccl``.
    """

    rank: int
    world: int
    device: torch.device
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    # ---- the step ------------------------------------------------------------------------------
    def shard(self, size: int) -> slice:
        """This rank's contiguous part of a global batch of ``size`` examples (parts differ by at most one)."""
        base, extra = divmod(size, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def faults_here(self) -> bool:
        """Whether the crash tests' fault variables apply to this rank (``TASKGRAPH_FAULT_RANK``, default: every rank)."""
        return os.environ.get(FAULT_RANK, str(self.rank)).strip() == str(self.rank)

    def step_seeds(self, seed: int, step: int) -> tuple[int, int]:
        """``(routing seed, this rank's seed)`` of ``step``: the first is the same on every rank."""
        return step_seed("routing", seed, step), step_seed(f"rank-{self.rank}", seed, step)

    def reduce_gradients(self, params: Sequence[nn.Parameter], values: Sequence[float]) -> list[float]:
        """Sum every parameter's gradient over the ranks (None where no rank has one) and ``values``.

        One all-reduce per gradient dtype; the presence flags and ``values`` ride with the float32 buffer.
        Afterwards each ``p.grad`` is a view of the summed buffer. Returns the summed ``values``.
        """
        flags = torch.tensor(
            [float(p.grad is not None) for p in params] + [float(v) for v in values],
            dtype=torch.float32,
            device=self.device,
        )  # [P + V]
        groups: dict[torch.dtype, list[nn.Parameter]] = {torch.float32: []}
        for p in params:
            groups.setdefault(p.dtype, []).append(p)
        buffers = []
        for dtype, group in groups.items():
            parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group]
            buffers.append((group, torch.cat(parts + ([flags] if dtype == torch.float32 else []))))  # [N]
        for _, flat in buffers:
            self._collective("summing the gradients", partial(dist.all_reduce, flat))
        for group, flat in buffers:
            offset = 0
            for p in group:
                p.grad = flat[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
            if group is groups[torch.float32]:
                flags = flat[offset:]  # [P + V]
        for p, seen in zip(params, flags[: len(params)].tolist()):
            if seen == 0:
                p.grad = None
        return flags[len(params) :].tolist()

    # ---- state from rank 0 -----------------------------------------------------------------
    def broadcast_json(self, value: Any) -> Any:
        """Rank 0's JSON-ready ``value`` on every rank (as UTF-8 bytes in tensors: nothing is pickled)."""
        payload = json.dumps(value if self.main else None).encode("utf-8")
        size = torch.tensor([len(payload)], dtype=torch.long, device=self.device)
        self._collective("sharing rank 0's state", lambda: dist.broadcast(size, 0))
        data = torch.zeros(int(size), dtype=torch.uint8, device=self.device)
        if self.main:
            data.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
        self._collective("sharing rank 0's state", lambda: dist.broadcast(data, 0))
        return json.loads(bytes(data.cpu().tolist()).decode("utf-8"))

    def broadcast_tensors(self, tensors: Iterable[Tensor]) -> None:
        """Overwrite every tensor with rank 0's (in place; same shapes and order on every rank)."""
        for t in tensors:
            self._collective("sharing rank 0's weights", partial(dist.broadcast, t.data, 0))

    def broadcast_module(self, module: nn.Module) -> None:
        """Every rank gets rank 0's parameters and persistent buffers; a different model is a clear error."""
        state = module.state_dict(keep_vars=True)
        layout = [[name, list(t.shape), str(t.dtype)] for name, t in state.items()]
        theirs = self.broadcast_json(layout)
        if theirs != layout:
            differ = [a[0] for a, b in zip(theirs, layout) if a != b] or ["(the number of tensors)"]
            raise DistributedError(
                f"rank {self.rank}: its model differs from rank 0's at {differ[:4]}; every "
                "process must build the same model from the same spec"
            )
        self.broadcast_tensors(t.data for t in state.values())

    def share_resume_state(self, step: int, sampler: Any, optimizer: torch.optim.Optimizer) -> int:
        """Rank 0's step, sampler state and optimizer state on every rank (all fresh at step 0); returns the step.

        The optimizer state travels as JSON (its scalars and the tensors' names, shapes and dtypes) and tensors
        broadcast in that order, so nothing is pickled.
        """
        from taskgraph.train.run_checkpoint import load_optimizer_state, optimizer_tensors

        tensors, meta = optimizer_tensors(optimizer) if self.main else ({}, {})
        layout = [[name, list(t.shape), str(t.dtype).removeprefix("torch.")] for name, t in tensors.items()]
        shared = self.broadcast_json(
            {"step": step, "sampler": sampler.state_dict(), "optimizer": meta, "tensors": layout} if self.main else None
        )
        if shared["step"] == 0:
            return 0
        received = (
            tensors
            if self.main
            else {name: torch.empty(shape, dtype=getattr(torch, dtype)) for name, shape, dtype in shared["tensors"]}
        )
        moved = {name: t.to(self.device) for name, t in received.items()}  # nccl broadcasts device tensors
        self.broadcast_tensors(moved.values())
        if not self.main:
            sampler.load_state_dict(shared["sampler"])
            load_optimizer_state(
                optimizer,
                {k: v.cpu() for k, v in moved.items()},
                shared["optimizer"],
                f"rank 0's optimizer state (rank {self.rank})",
            )
        return int(shared["step"])

    def barrier(self) -> None:
        self._collective("waiting for the other processes", lambda: dist.barrier())

    def leave(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        """An exit callback: :meth:`close`, ``failed`` when the block ends with an exception."""
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """Leave the process group (quietly: a peer may already be gone).

        Args:
            failed: this process is ending with an error. Then SIGTERM is ignored from here on: torchrun sends it
                to every process once one fails, and its default action would kill this one before the error's
                message is printed (seen in 1 run of the rank-death test in ~20). Otherwise SIGTERM's default is
                restored.
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN if failed else signal.SIG_DFL)
        if dist.is_initialized():
            try:
                # Tensors kept alive by reference cycles (autograd graphs) may still be held by gloo's finished work;
                # freed later, at interpreter exit, they abort the process ("terminate called without an active
                # exception", 1 run in 4 of the DDP test). Collected here, while the interpreter is whole: 0 in 24.
                gc.collect()
                dist.destroy_process_group()
            except RuntimeError:
                pass

    @contextlib.contextmanager
    def together(self, what: str) -> Iterator[None]:
        """A block whose collectives run inside other code (the sharded base's forward and backward under
        ``training.parallel: fsdp``): a ``RuntimeError`` that comes out of a collective in it — a peer lost, a
        timeout — becomes the :class:`DistributedError` a direct collective gives; any other error passes as it is.
        """
        try:
            yield
        except RuntimeError as exc:
            if not _raised_by_collective(exc):
                raise
            raise self._lost(what, exc) from None

    def _collective(self, what: str, call: Callable[[], R]) -> R:
        try:
            return call()
        except RuntimeError as exc:  # gloo / nccl: a peer closed its connection, or the timeout passed
            raise self._lost(what, exc) from None

    def _lost(self, what: str, exc: RuntimeError) -> DistributedError:
        note_stopped_by_peer()
        first = _first_sentence(str(exc)) or type(exc).__name__
        return DistributedError(
            f"rank {self.rank} of {self.world}: lost the other processes while {what} ({first}); another "
            f"process ended or stopped answering (its own message says why), so this one stops too"
        )

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, world={self.world}, device={self.device}, backend={self.backend!r})"


_COLLECTIVE_FILES = ("distributed_c10d.py", "_functional_collectives.py")  # where torch.distributed waits on one


def _raised_by_collective(exc: BaseException) -> bool:
    """Whether ``exc`` came out of a collective (the backend's own error type, or raised where torch.distributed runs
    or waits on one): gloo reports a lost peer as a plain ``RuntimeError``, so where it was raised tells it from a
    model's error, or from FSDP's own checks, which raise in FSDP's files."""
    if isinstance(exc, dist.DistError):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    home = os.path.dirname(dist.__file__)
    return bool(frames) and any(frames[-1].filename == os.path.join(home, name) for name in _COLLECTIVE_FILES)


def _first_sentence(text: str) -> str:
    """A backend's error, short: its first line, without the source location, up to its first full stop."""
    line = re.sub(r"^\[[^\]]*\]\s*", "", text.strip().split("\n")[0])  # gloo: "[.../pair.cc:553] Connection ..."
    return line.split(". ")[0][:240]


def step_seed(purpose: str, seed: int, step: int) -> int:
    """A 63-bit seed for ``(purpose, training.seed, step)``: the same on every machine."""
    digest = hashlib.sha256(f"taskgraph-{purpose}:{seed}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def data_parallel_from_env(device: torch.device) -> DataParallel | None:
    """Join the process group torchrun described in the environment; None for a single process.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` (:func:`process_place`; and ``MASTER_ADDR`` / ``MASTER_PORT``
    through ``init_process_group``). ``device`` cpu → gloo; cuda → nccl on ``cuda:LOCAL_RANK``. Each process says whom
    it waits for and how long before it joins (a lone rank 0 waits for the others up to the timeout).
    """
    place = process_place()
    world, rank, local = place.world, place.rank, place.local
    if world == 1:
        return None
    timeout = collective_timeout()
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK={local} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s); start at most that many processes per machine (--nproc_per_node)"
            )
        device, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        others = (
            "rank(s) " + ", ".join(str(r) for r in range(world) if r != rank)
            if world <= 9
            else f"the {world - 1:,} other ranks"
        )
        print(
            f"rank {rank} waits up to {timeout:,.0f} s ({TIMEOUT_ENV}) for {others} (WORLD_SIZE={world}) to join "
            f"the process group at {os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}",
            file=sys.stderr,
            flush=True,
        )
        try:
            dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"rank {rank} of {world}: could not join the process group ({backend}): {exc}; "
                "start the job with torchrun (it sets MASTER_ADDR, MASTER_PORT, RANK, "
                "WORLD_SIZE)"
            ) from None
    parallel = DataParallel(rank, world, device, backend)
    signal.signal(signal.SIGTERM, _stopped_by(parallel))
    return parallel


def _stopped_by(parallel: DataParallel) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        note_stopped_by_peer()
        raise DistributedError(
            f"rank {parallel.rank} of {parallel.world}: stopped by the launcher (SIGTERM): torchrun "
            "ends every process of the job when one of them fails; that one's message says why"
        )

    return handler


__all__ = [  # with the names of taskgraph.train.process_env it re-exports (importers read them here)
    "DEFAULT_TIMEOUT_S",
    "FAULT_RANK",
    "MAX_TIMEOUT_S",
    "TIMEOUT_ENV",
    "DataParallel",
    "DistributedError",
    "ProcessPlace",
    "collective_timeout",
    "data_parallel_from_env",
    "process_place",
    "step_seed",
    "stopped_by_peer",
]
