"""One process of the FSDP tests (``tests/train/test_fsdp.py`` starts two with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set, as torchrun would).

``python -m tests.train.fsdp_worker OUT SPEC_DIR``: for the poly and graph routers, the model of
:mod:`tests.train.ddp_worker` with its base sharded (:func:`taskgraph.train.fsdp.shard_base`) takes ``STEPS``
training steps of this rank's half of the 16-example batch (and, for comparison, the same steps unsharded, as ddp
takes them: ``OUT/<router>-ddp-rank<r>.safetensors``); the frozen base's bytes before and after sharding go to
``OUT/<router>-bytes-rank<r>.json`` and the whole state, gathered on rank 0, to ``OUT/<router>.safetensors``. Then
the run in ``SPEC_DIR/run`` (one process trained it to a checkpoint; a tiny GPT-2 with generate tasks) is resumed to
its end under fsdp, and this rank's result goes to ``OUT/result-rank<r>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from taskgraph.model import TaskGraphModel
from taskgraph.spec import load_spec
from taskgraph.train.optim import build_optimizer
from tests.train.ddp_worker import global_batch, model_for

ROUTERS = ("poly", "graph")
STEPS = 3


def train_steps(model: TaskGraphModel, parallel: object) -> None:
    """``STEPS`` steps as the training loop takes them, with SGD at learning rate 1 for AdamW; ``parallel`` None: one
    process, the whole batch, the routing noise the processes share.

    Not AdamW: where a true gradient is 0 (the graph router's centred read-out: a norm's bias, the attention biases)
    the computed one is rounding noise (~1e-9), which differs between one process and two, and AdamW's first steps
    move such an entry by ±lr whatever the noise's size (:mod:`tests.train.test_distributed` bounds it). SGD moves
    it by the noise, so every weight can be compared; the training loop's AdamW is compared on whole runs."""
    from taskgraph.train.distributed import step_seed
    from taskgraph.train.step import step_gradients

    groups = build_optimizer(model, model.spec.training).param_groups
    optimizer = torch.optim.SGD([{"params": g["params"]} for g in groups], lr=1.0)
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    for step in range(1, STEPS + 1):
        if parallel is None:
            model.routing_seed = step_seed("routing", 0, step)
        optimizer.zero_grad(set_to_none=True)
        step_gradients(model, global_batch(), trainable, torch.device("cpu"), step, 0, parallel)  # type: ignore[arg-type]
        torch.nn.utils.clip_grad_norm_(trainable, model.spec.training.grad_clip or float("inf"))
        optimizer.step()
    model.routing_seed = None


def frozen(model: TaskGraphModel) -> list[torch.nn.Parameter]:
    return [p for p in model.base.parameters() if not p.requires_grad]


def main(out: Path, spec_dir: Path) -> None:
    from taskgraph.train import train
    from taskgraph.train.distributed import data_parallel_from_env
    from taskgraph.train.fsdp import parameter_bytes, shard_base, whole_base

    torch.set_num_threads(1)
    parallel = data_parallel_from_env(torch.device("cpu"))
    assert parallel is not None
    for router in ROUTERS:
        model = model_for(router)  # ddp: the whole model on both processes
        parallel.broadcast_module(model)
        train_steps(model, parallel)
        trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(out / f"{router}-ddp-rank{parallel.rank}.safetensors"))
        model = model_for(router)
        parallel.broadcast_module(model)
        before = parameter_bytes(frozen(model))
        shards = shard_base(model, parallel)
        after = parameter_bytes(frozen(model))
        train_steps(model, parallel)
        sizes = {"before": [before.held, before.whole], "after": [after.held, after.whole], "blocks": shards.blocks}
        (out / f"{router}-bytes-rank{parallel.rank}.json").write_text(json.dumps(sizes))
        with whole_base(shards, model):
            if parallel.main:
                state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
                save_file(state, str(out / f"{router}.safetensors"))
    spec = load_spec(spec_dir / "run" / "spec.yaml")
    result = train(spec, spec_dir / "run", base_dir=spec_dir, resume=True)  # closes the group
    record = {"rank": result.rank, "step": result.step, "resumed_from": result.resumed_from, "acc": result.final.acc}
    held = parameter_bytes(frozen(result.model))
    record["bytes"] = [held.held, held.whole]
    (out / f"result-rank{parallel.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
