"""Each task's share of a step's adapter gradient (:func:`taskgraph.train.step.task_updates`), which feeds the graph
router's ``relation_estimate: update``: exact against the batch's own gradient, and handed to the router on its
cadence by the training step."""

from __future__ import annotations

import torch

from taskgraph.data import Batch
from taskgraph.model import TaskGraphModel
from taskgraph.spec import spec_from_dict
from taskgraph.train.step import step_gradients, task_updates
from tests.conftest import TINY_BERT, minimal_spec

NO_DROPOUT = {**TINY_BERT, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _model(router: dict) -> TaskGraphModel:
    torch.manual_seed(0)
    return TaskGraphModel(spec_from_dict(minimal_spec(router=router, model={"config": NO_DROPOUT, "max_length": 16})))


def _batch(task_ids: list[int], seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor(task_ids)  # [B]
    tasks, inverse = torch.unique(ids, return_inverse=True)  # [U], [B]
    return Batch(
        torch.randint(5, 100, (len(task_ids), 12), generator=gen),  # [B, S]
        torch.ones(len(task_ids), 12, dtype=torch.long),
        torch.randint(0, 2, (len(task_ids),), generator=gen),  # [B] every task has >= 2 labels
        ids,
        tasks,
        inverse,
    )


def test_task_updates_sum_to_the_batch_gradient_and_each_is_its_tasks_share():
    model = _model({"kind": "poly"})
    model.eval()  # Poly's routing is drawn at random in training: the two forwards must route alike
    batch = _batch([0, 2, 0, 1, 2, 2])
    params = model.adapter_parameters()

    def forward(b: Batch):
        return model(b.input_ids, b.attention_mask, b.task_ids, b.labels, distinct=(b.tasks, b.inverse))

    out = forward(batch)
    tasks, rows = task_updates(model, out, batch.labels, batch.size)
    assert tasks.tolist() == [0, 1, 2] and rows.shape == (3, sum(p.numel() for p in params))
    whole = torch.cat([g.reshape(-1) for g in torch.autograd.grad(out.loss, params)])  # [P]
    assert torch.allclose(rows.sum(0), whole, atol=1e-6)  # the shares add up to the step's gradient
    assert float(rows.abs().sum(1).min()) > 0
    # task 2's row is the gradient of its own examples' mean loss, weighted by its share of the batch (3 of 6)
    keep = (batch.task_ids == 2).nonzero().squeeze(1)
    own = Batch(
        batch.input_ids[keep], batch.attention_mask[keep], batch.labels[keep], batch.task_ids[keep],
        torch.tensor([2]), torch.zeros(len(keep), dtype=torch.long),
    )  # fmt: skip
    alone = torch.cat([g.reshape(-1) for g in torch.autograd.grad(forward(own).loss, params)])
    assert torch.allclose(rows[2], alone * 3 / 6, atol=1e-6)


def test_training_steps_hand_the_graph_router_each_tasks_update_every_n_steps():
    model = _model({"kind": "graph", "relation_estimate": "update", "estimate_every": 2})
    router = model.router
    trainable = [p for p in model.parameters() if p.requires_grad]
    seen = []
    for step in range(4):
        model.zero_grad()
        before = router.task_signal.clone()
        batch = _batch([0, 1, 2, 0, 1, 2] if step < 2 else [0, 1, 0, 1], seed=step)
        step_gradients(model, batch, trainable, torch.device("cpu"), step, 0)
        changed = (router.task_signal - before).abs().sum(1) > 0  # [T]
        seen.append(changed.nonzero().squeeze(1).tolist())
        assert all(p.grad is not None for p in model.adapter_parameters())  # the step's own backward still ran
    # the router counts forwards from 1: steps 2 and 4 are estimate steps, with that batch's tasks
    assert seen == [[], [0, 1, 2], [], [0, 1]]
    assert bool(router.relations.targeted.all())
