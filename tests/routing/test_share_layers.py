"""``router.share_layers`` (poly, mhr): one routing row per task broadcast to every layer.

Equivalences: a shared router equals an unshared one whose every layer holds the shared row (eval
weights, and the training sample under the same seed), and the shared row's gradient is the sum of the
unshared router's per-layer gradients.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from taskgraph.errors import SpecError
from taskgraph.routing import MHRRouter, PolyRouter
from taskgraph.spec.models import RouterSpec

T, L, H, K = 5, 3, 2, 4
TASKS = torch.tensor([0, 2, 4])


def pair(kind: str = "mhr", heads: int = H):
    cls = MHRRouter if kind == "mhr" else PolyRouter
    torch.manual_seed(0)
    shared = cls(T, L, heads, K, RouterSpec(kind=kind, share_layers=True))
    plain = cls(T, L, heads, K, RouterSpec(kind=kind))
    with torch.no_grad():
        shared.logits.normal_()
        plain.logits.copy_(shared.logits.expand(-1, L, -1, -1))  # every layer holds the shared row
    return shared, plain


@pytest.mark.parametrize("kind,heads", [("poly", 1), ("mhr", H)])
def test_one_row_per_task_equals_copies_in_every_layer(kind: str, heads: int):
    shared, plain = pair(kind, heads)
    assert shared.logits.shape == (T, 1, heads, K) and plain.logits.shape == (T, L, heads, K)
    shared.eval(), plain.eval()
    out = shared(TASKS)
    assert out.weights.shape == (3, L, heads, K) and out.gates.shape == (3, L)
    assert_close(out.weights, plain(TASKS).weights)
    shared.train(), plain.train()
    torch.manual_seed(7)
    a = shared(TASKS).weights  # [U, L, H, K]
    torch.manual_seed(7)
    b = plain(TASKS).weights
    assert_close(a, b)
    assert not torch.equal(a[:, 0], a[:, 1])  # the sample is drawn per layer; the logits are shared


def test_the_shared_row_gathers_every_layers_gradient():
    shared, plain = pair()
    shared.eval(), plain.eval()
    target = torch.randn(3, L, H, K)
    (shared(TASKS).weights * target).sum().backward()
    (plain(TASKS).weights * target).sum().backward()
    assert_close(shared.logits.grad, plain.logits.grad.sum(1, keepdim=True))
    assert shared.logits.grad[[1, 3]].abs().sum() == 0  # rows of tasks not in the batch


def test_a_few_shot_row_and_an_owned_skill_keep_the_shared_shape():
    shared, _ = pair()
    task = shared.add_task_to_learn(own_skill=True)
    assert task == T and shared.logits.shape == (T + 1, 1, H, K + 1)
    shared.eval()
    w = shared(torch.tensor([0, task])).weights  # [2, L, H, K+1]
    assert_close(w[1, ..., -1], torch.ones(L, H)) and w[0, ..., -1].abs().sum() == 0
    ((name, param, mask),) = shared.task_parameters(task)
    assert name == "logits" and param is shared.logits and mask.shape == (T + 1, 1, 1, 1)
    assert "share_layers=True" in repr(shared)


def test_the_spec_takes_it_for_poly_and_mhr_only(tmp_path):
    from taskgraph.spec.overrides import spec_with_overrides

    spec = spec_with_overrides("configs/routers/mhr.yaml", ["router.share_layers=true"])
    assert spec.router.params.share_layers is True
    with pytest.raises(SpecError, match="router.share_layers: unknown key 'share_layers'"):
        spec_with_overrides("configs/routers/graph.yaml", ["router.share_layers=true"])
    with pytest.raises(SpecError, match="router.share_layers: Input should be a valid boolean"):
        spec_with_overrides("configs/routers/poly.yaml", ["router.share_layers=maybe"])


def test_save_and_load_keep_the_shared_routing(tmp_path):
    from taskgraph.model import TaskGraphModel
    from taskgraph.spec.overrides import spec_with_overrides

    spec = spec_with_overrides("configs/quickstart.yaml", ["router.share_layers=true"])
    torch.manual_seed(0)
    model = TaskGraphModel(spec).eval()
    with torch.no_grad():
        model.router.logits.normal_()
    model.save_pretrained(tmp_path / "m")
    again = TaskGraphModel.from_pretrained(tmp_path / "m").eval()
    assert again.router.share_layers and again.router.logits.shape == model.router.logits.shape
    ids = torch.randint(5, 60, (4, 10))
    names = [t.name for t in spec.tasks][:4]
    assert_close(again(ids, torch.ones_like(ids), names).logits, model(ids, torch.ones_like(ids), names).logits)
