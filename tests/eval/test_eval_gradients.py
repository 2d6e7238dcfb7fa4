"""Gradient alignment of a model's tasks: identical tasks align exactly; seeded, eval mode, no .grad left."""

from __future__ import annotations

import torch

from taskgraph.data import TaskData
from taskgraph.eval import model_gradient_alignment
from taskgraph.eval.gradients import seeded_batches
from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec

BERT = dict(
    model_type="bert",
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=32,
)


def model(router: str = "shared") -> TaskGraphModel:
    torch.manual_seed(0)
    spec = Spec.model_validate(
        {
            "model": {"config": dict(BERT), "max_length": 8},
            "adapters": {"rank": 2, "alpha": 4, "skills": 3, "dropout": 0.5},
            "router": {"kind": router},
            "tasks": [{"name": n, "num_labels": 2} for n in ("a", "b", "c")],
        }
    )
    m = TaskGraphModel(spec)
    with torch.no_grad():
        for _, layer in m.adapted:
            layer.B.normal_(0, 0.1)  # B starts at 0: make every adapter parameter matter
        m.heads.heads[1].load_state_dict(m.heads.heads[0].state_dict())  # task b's head = task a's
    return m


def task(task_id: int, seed: int, n: int = 40) -> TaskData:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, 8), generator=gen)
    return TaskData(f"t{task_id}", task_id, ids, torch.full((n,), 8), torch.randint(0, 2, (n,), generator=gen))


def test_identical_tasks_align_exactly():
    m = model()  # shared router: every task has the same routing
    a, b, c = task(0, seed=1), task(1, seed=1), task(2, seed=2)  # a and b: same data, same head
    m.train()
    cos = model_gradient_alignment(m, [a, b, c], pad_id=0, batches=2, batch_size=16)
    assert cos.shape == (3, 3) and torch.equal(cos, cos.T)
    assert cos.diagonal().tolist() == [1.0, 1.0, 1.0]
    assert abs(float(cos[0, 1]) - 1.0) < 1e-6  # dropout would break this: the model ran in eval mode
    assert float(cos[0, 2]) < 0.999
    assert all(p.grad is None for p in m.parameters())  # no .grad left behind
    assert m.training and all(mod.training for mod in m.modules())  # modes restored
    again = model_gradient_alignment(m, [a, b, c], pad_id=0, batches=2, batch_size=16)
    assert torch.equal(cos, again)  # seeded batches, eval mode: deterministic


def test_seeded_batches():
    data = task(0, seed=3, n=40)
    batches = seeded_batches(data, pad_id=0, batches=2, batch_size=16, seed=0)
    assert [b.size for b in batches] == [16, 16]
    rows = torch.cat([b.input_ids for b in batches])
    assert len({tuple(r) for r in rows.tolist()}) == 32  # distinct rows
    assert torch.equal(
        rows, torch.cat([b.input_ids for b in seeded_batches(data, pad_id=0, batches=2, batch_size=16, seed=0)])
    )
    assert [b.size for b in seeded_batches(task(0, seed=3, n=20), pad_id=0, batches=2, batch_size=16)] == [16, 4]
