"""One process of the data-parallel tests (``tests/train/test_distributed.py`` starts two of them with RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, as torchrun would).

``python -m tests.train.ddp_worker OUT SPEC_DIR``: for each router, one training step of this rank's half of a
16-example batch through :func:`taskgraph.train.loop.step_gradients`, then the optimizer's step; the gradients
and weights go to ``OUT/<router>-rank<r>.safetensors``. Then a short :func:`taskgraph.train.train` of the spec in
``SPEC_DIR`` into ``SPEC_DIR/run`` (rank 0 writes it), and this rank's result to ``OUT/result-rank<r>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from taskgraph.adapters import distinct_tasks
from taskgraph.data import Batch
from taskgraph.model import TaskGraphModel
from taskgraph.spec import load_spec
from taskgraph.spec.models import Spec
from taskgraph.train.optim import build_optimizer

ROUTERS = ("poly", "mhr", "private", "graph")
BATCH, SEQ = 16, 7
TINY = dict(
    model_type="bert",
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def spec(router: str) -> Spec:
    """Three tasks on a tiny BERT without dropout (one step of 2 × 8 must equal one of 16 exactly)."""
    return Spec.model_validate(
        {
            "model": {"config": dict(TINY), "target_modules": ["query", "value"]},
            "adapters": {"rank": 4, "alpha": 8, "skills": 3, "heads": 2 if router in ("mhr", "private") else 1},
            "router": {"kind": router},
            "tasks": [
                {"name": "alpha", "num_labels": 2},
                {"name": "beta", "num_labels": 3},
                {"name": "gamma", "num_labels": 4},
            ],
            "training": {"lr": {"adapters": 1e-2, "router": 1e-1, "heads": 1e-2}, "weight_decay": 0.01},
        }
    )


def model_for(router: str) -> TaskGraphModel:
    """The model every process and the one-process reference start from (B and the router away from their init)."""
    torch.manual_seed(0)
    model = TaskGraphModel(spec(router))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def global_batch() -> Batch:
    """16 examples; task 0 ("alpha") only in the first half, so rank 1's share has no example of it."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(3, 100, (BATCH, SEQ), generator=gen)
    lengths = torch.randint(2, SEQ + 1, (BATCH,), generator=gen)
    mask = (torch.arange(SEQ)[None] < lengths[:, None]).long()
    task_ids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 2, 1, 2, 2, 1, 2])
    labels = torch.tensor([int(torch.randint(0, n, (), generator=gen)) for n in (2, 3, 4) for _ in range(BATCH)])
    labels = torch.stack([labels[t * BATCH + i] for i, t in enumerate(task_ids.tolist())])
    tasks, inverse = distinct_tasks(task_ids)
    return Batch(ids * mask, mask, labels, task_ids, tasks, inverse)


def grads_and_weights(model: TaskGraphModel) -> dict[str, torch.Tensor]:
    out = {f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    out.update({f"weight.{n}": p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    return out


def one_step(router: str, parallel: Any) -> dict[str, torch.Tensor]:
    """One step as the training loop takes it; ``parallel`` None: the one-process reference on the whole batch."""
    from taskgraph.train.distributed import step_seed
    from taskgraph.train.loop import step_gradients

    model = model_for(router)
    optimizer = build_optimizer(model, model.spec.training)
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    if parallel is None:  # the same routing noise as the processes draw at step 1
        model.routing_seed = step_seed("routing", 0, 1)
    else:
        parallel.broadcast_module(model)
    optimizer.zero_grad(set_to_none=True)
    values = step_gradients(model, global_batch(), trainable, torch.device("cpu"), 1, 0, parallel)
    state = grads_and_weights(model)  # gradients before the step, weights after it
    optimizer.step()
    state.update({k: v for k, v in grads_and_weights(model).items() if k.startswith("weight.")})
    state["losses"] = torch.tensor(values, dtype=torch.float64)
    return state


def main(out: Path, spec_dir: Path) -> None:
    from taskgraph.train import train
    from taskgraph.train.distributed import data_parallel_from_env

    torch.set_num_threads(1)
    parallel = data_parallel_from_env(torch.device("cpu"))
    assert parallel is not None
    for router in ROUTERS:
        save_file(one_step(router, parallel), str(out / f"{router}-rank{parallel.rank}.safetensors"))
    result = train(load_spec(spec_dir / "spec.yaml"), spec_dir / "run", base_dir=spec_dir)  # closes the group
    record = {
        "rank": result.rank,
        "step": result.step,
        "mean_acc": result.final.mean_acc,
        "heads": float(sum(p.detach().abs().sum() for p in result.model.heads.parameters())),
    }
    (out / f"result-rank{parallel.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
