"""The frozen base sharded across the processes of a data-parallel run: ``training.parallel: fsdp`` (FSDP2).

    taskgraph train SPEC --out RUN --nproc-per-node 4 --set training.parallel=fsdp
    torchrun --nproc_per_node 4 -m taskgraph train SPEC --out RUN --set training.parallel=fsdp

Under ``ddp`` (the default) every process holds the whole model. Under ``fsdp`` each holds about 1 / world of the
frozen base's weights: :func:`shard_base` applies ``torch.distributed.fsdp.fully_shard`` to every transformer block
of the base (transformers' ``GradientCheckpointingLayer``), each block one unit whose weights are all-gathered just
before its forward and again before its backward and freed after each, and then to the trunk a step calls (the
base itself, or a language model's decoder stack) for what lies outside the blocks: embeddings, final norm,
pooler; FSDP keeps the trunk's own weights gathered from its forward to the end of its backward.

What stays whole on every process, and why:

- the **routed LoRA inventories** (``A``, ``B``) sit inside the blocks' linear layers but are left out of the units
  (``ignored_params``). The fused routing path (:mod:`taskgraph.adapters.fused`) reads every layer's inventory at
  once, before the blocks run — outside any unit's forward, where a sharded inventory is not whole; they are a few
  percent of the weights, so sharding them would save little; and left whole they keep the step of
  :mod:`taskgraph.train.distributed` exactly as it is: one all-reduce of every trainable gradient, a parameter no
  process gave a gradient left at None, the optimizer state and the checkpoints unchanged;
- the **router** (the GNN of ``graph``) and the **heads** live outside the base: replicated, as under ddp.

So the units hold frozen weights only: FSDP all-gathers them and never reduce-scatters a gradient, and the
trainable gradients are the ones ddp computes (tests: the weights of ddp's two processes bit for bit, one process's
to 1e-5).

Every process must run the sharded base's forward together (each block's all-gather is a collective). So under
fsdp every process validates — the whole validation split, the same numbers; rank 0 records them — where under ddp
rank 0 validates alone; and before rank 0 writes a model (a checkpoint, the best, the final one) every process
sends its shards to rank 0, which holds the whole base on its CPU while it writes (:func:`whole_base`).
Checkpoints keep taskgraph's format, so a run trained with fsdp resumes with ddp or with one process, and back;
``training.parallel`` is not part of the spec hash (:func:`~taskgraph.train.run_checkpoint.spec_hash`).

One process has nothing to shard: ``fsdp`` then trains unsharded, exactly as ``ddp`` does, so a run that several
processes started goes on in one. Each process builds the whole model on its device before it shards the base (its
peak at the start is the whole base); afterwards it holds its share (:func:`parameter_bytes`: half with two
processes, to the byte, in the tests). Not sharded: an encoder-decoder base (its encoder and decoder run apart;
refused), a causal LM's output layer and an input embedding tied to it (kept whole, see :func:`_shared_outside`).
Tested on CPU with gloo; nccl and CUDA are not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from taskgraph.model import TaskGraphModel
from taskgraph.train.distributed import DataParallel
from taskgraph.train.run_setup import TrainingError


@dataclass(frozen=True)
class ShardedBase:
    """A model whose frozen base :func:`shard_base` sharded across the processes of ``parallel``.

    Args:
        parallel: the run's processes.
        trunk: the module a step calls, FSDP's root unit.
        blocks: how many transformer blocks are units of their own.
    """

    parallel: DataParallel
    trunk: nn.Module
    blocks: int

    def together(self, what: str) -> contextlib.AbstractContextManager[None]:
        """A block running the sharded base (its all-gathers): a lost peer is a :class:`DistributedError`."""
        return self.parallel.together(what)

    def __repr__(self) -> str:
        return f"ShardedBase(trunk={type(self.trunk).__name__}, blocks={self.blocks}, world={self.parallel.world})"


@dataclass(frozen=True)
class ParameterBytes:
    """A module's parameter memory: ``held`` by this process (its shards' storage), ``whole`` unsharded."""

    held: int
    whole: int

    @property
    def share(self) -> float:
        return self.held / self.whole if self.whole else 1.0


def shard_base(model: TaskGraphModel, parallel: DataParallel) -> ShardedBase:
    """Shard ``model``'s frozen base across ``parallel``'s processes (see the module docstring); in place.

    Call it on every process, after every process holds the same weights and before the optimizer is built.

    Raises:
        TrainingError: a base this cannot shard (no transformer blocks; an encoder-decoder).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    trunk = _trunk(model)
    blocks = _blocks(trunk)
    if not blocks:
        raise TrainingError(
            f"training.parallel: fsdp shards the base's transformer blocks (transformers' GradientCheckpointingLayer) "
            f"and {type(model.base).__name__} has none; use training.parallel: ddp"
        )
    whole = {p for p in model.base.parameters() if p.requires_grad} | _shared_outside(model.base, trunk)
    mesh = init_device_mesh(parallel.device.type, (parallel.world,))
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=True, ignored_params=whole)
    fully_shard(trunk, mesh=mesh, ignored_params=whole)
    return ShardedBase(parallel, trunk, len(blocks))


def _shared_outside(base: nn.Module, trunk: nn.Module) -> set[nn.Parameter]:
    """The trunk's parameters that a module of ``base`` outside the trunk uses too: a causal LM's input embedding
    tied to its output layer. They stay whole, as that layer does (it runs outside the trunk's forward)."""
    inside = {id(m) for m in trunk.modules()}
    outside = {p for m in base.modules() if id(m) not in inside for p in m.parameters(recurse=False)}
    return outside & set(trunk.parameters())


def _trunk(model: TaskGraphModel) -> nn.Module:
    """The base module a training step calls: the whole base of a classifier; a causal LM's decoder stack."""
    from taskgraph.model.lm_base import hidden_trunk, lm_kind_of

    if lm_kind_of(model.base) == "seq2seq":
        raise TrainingError(
            "training.parallel: fsdp: an encoder-decoder base runs its encoder and its decoder apart, and fsdp shards "
            "one trunk; use training.parallel: ddp"
        )
    return hidden_trunk(model.base)


def _blocks(trunk: nn.Module) -> list[nn.Module]:
    """The outermost transformer blocks inside ``trunk``, in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    found: list[tuple[str, nn.Module]] = []
    for name, module in trunk.named_modules():
        inside = any(name.startswith(outer + ".") for outer, _ in found)
        if isinstance(module, GradientCheckpointingLayer) and not inside:
            found.append((name, module))
    return [module for _, module in found]


def parameter_bytes(params: Iterable[nn.Parameter]) -> ParameterBytes:
    """The bytes of ``params`` this process holds (a shard's storage, padding included) and unsharded.

    ``parameter_bytes(p for p in model.base.parameters() if not p.requires_grad)``: the frozen base's.
    """
    from torch.distributed.tensor import DTensor  # imported when used: 1.5 s that a run without fsdp never pays

    held = whole = 0
    seen: set[int] = set()
    for p in params:
        whole += p.numel() * p.element_size()
        local = p.to_local() if isinstance(p, DTensor) else p
        storage = local.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            held += storage.nbytes()
    return ParameterBytes(held, whole)


@contextlib.contextmanager
def whole_base(shards: ShardedBase | None, model: TaskGraphModel) -> Iterator[None]:
    """Every process: the base's shards gathered on rank 0's CPU, where ``model.state_dict()`` returns them whole
    inside the block (so a save there writes the whole model); the other processes hold nothing more. Nothing to do
    without ``shards``."""
    if shards is None:
        yield
        return
    from torch.distributed.tensor import DTensor

    whole: dict[str, Tensor] = {}
    with shards.together("gathering the base's shards for rank 0 to save the model"):
        for key, value in model.state_dict().items():  # the same keys, in the same order, on every process
            if isinstance(value, DTensor):
                full = value.full_tensor()  # a collective
                if shards.parallel.main:
                    whole[key] = full.cpu()
                del full
    if not shards.parallel.main:
        yield
        return

    def fill(module: nn.Module, state: dict[str, Any], prefix: str, meta: Any) -> None:
        for key in state:
            if key.startswith(prefix) and key[len(prefix) :] in whole:
                state[key] = whole[key[len(prefix) :]]

    handle = model.register_state_dict_post_hook(fill)
    try:
        yield
    finally:
        handle.remove()
