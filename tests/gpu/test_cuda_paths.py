"""CUDA checks (skipped without a CUDA device): every router's fused routed path on CUDA equals the CPU's in fp32
(loss, logits, every gradient), stays close under bf16 autocast, and a training step syncs with the host only
where the router must; routed generation on CUDA writes the CPU's tokens; a compiled step (inductor) equals eager.

Run where a GPU is at hand: ``python -m pytest -q tests/gpu``; the figures go in the README's GPU section.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

import taskgraph
from taskgraph.model import TaskGraphModel
from taskgraph.model.generation import generate_ids
from taskgraph.registry import ROUTERS
from tests.model.conftest import _make_spec, _perturb
from tests.model.test_generative import PROMPTS, lm_spec, trained

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
INPUT_IDS = torch.randint(3, 100, (6, 7), generator=torch.Generator().manual_seed(1))
MASK = (torch.arange(7)[None] < torch.tensor([7, 3, 5, 7, 2, 6])[:, None]).long()
TASKS = torch.tensor([2, 0, 2, 1, 0, 2])
LABELS = torch.tensor([4, 1, 0, 2, 0, 3])
KINDS = list(ROUTERS.ordered())


def _model(kind: str) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(_make_spec("bert", router=kind, heads=1))
    _perturb(model)
    return model.eval()  # deterministic routing and no dropout: the two devices see the same computation


def _pass(model: TaskGraphModel, device: torch.device, autocast: bool = False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out = model(INPUT_IDS.to(device), MASK.to(device), TASKS.to(device), LABELS.to(device))
        loss = out.loss + model.router.regularizer()
    loss.backward()
    grads = {n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach().float().cpu(), out.logits.detach().float().cpu(), grads


@pytest.mark.parametrize("kind", KINDS)
def test_cuda_fp32_equals_cpu_and_bf16_stays_close(kind: str) -> None:
    cpu = _model(kind)
    gpu = copy.deepcopy(cpu).to(CUDA)
    loss, logits, grads = _pass(cpu, torch.device("cpu"))
    g_loss, g_logits, g_grads = _pass(gpu, CUDA)
    assert_close(g_loss, loss, atol=1e-5, rtol=1e-5)
    assert_close(g_logits, logits, atol=1e-4, rtol=1e-4)
    assert g_grads.keys() == grads.keys()
    for name, grad in grads.items():
        assert_close(g_grads[name], grad, atol=1e-4, rtol=1e-3, msg=lambda m, n=name: f"{n}: {m}")
    b_loss, b_logits, _ = _pass(gpu, CUDA, autocast=True)
    scale = float(logits.abs().max())
    assert float((b_logits - logits).abs().max()) <= 0.05 * max(scale, 1.0)
    assert abs(float(b_loss) - float(loss)) <= 0.05 * max(abs(float(loss)), 1.0)


def sync_sites(kind: str) -> list[str]:
    """taskgraph's source lines in a training step (forward + regulariser + backward) that wait for the device."""
    model = _model(kind).to(CUDA).train()
    ids, mask, tasks, labels = (t.to(CUDA) for t in (INPUT_IDS, MASK, TASKS, LABELS))
    distinct = torch.unique(TASKS, return_inverse=True)  # once per batch by the collator, on the host
    distinct = (distinct[0], distinct[1].to(CUDA))  # Batch.to keeps tasks on the host
    model(ids, mask, tasks, labels, distinct=distinct).loss.backward()  # warm-up: lazy initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = model(ids, mask, tasks, labels, distinct=distinct)
            (out.loss + model.router.regularizer()).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ours = Path(taskgraph.__file__).parent  # the base model's own syncs (transformers' mask checks) PEFT pays too
    return [
        f"{Path(w.filename).name}:{w.lineno}"
        for w in caught
        if "synchronizing" in str(w.message) and Path(w.filename).is_relative_to(ours)
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_training_step_never_waits_for_the_host(kind: str) -> None:
    """The fused path launches without a device → host copy (a sync would serialise the step's kernels); the graph
    router's relation regulariser reads its active slots as masks, not by boolean indexing."""
    assert sync_sites(kind) == []


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_routed_generation_on_cuda_writes_the_cpu_tokens(family: str) -> None:
    cpu = trained(lm_spec(family))
    gpu = copy.deepcopy(cpu).to(CUDA)
    tasks = torch.tensor([1, 2, 1, 2, 1])
    want = generate_ids(cpu, tasks, PROMPTS, [6] * len(PROMPTS))
    assert generate_ids(gpu, tasks.to(CUDA), PROMPTS, [6] * len(PROMPTS)) == want


def test_compiled_step_with_inductor_equals_eager_on_cuda() -> None:
    eager = _model("poly").to(CUDA)
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    ids, mask, tasks, labels = (t.to(CUDA) for t in (INPUT_IDS, MASK, TASKS, LABELS))
    want = eager(ids, mask, tasks, labels)
    got = compiled(ids, mask, tasks, labels)
    assert_close(got.logits, want.logits, atol=1e-4, rtol=1e-4)
    got.loss.backward()
    want.loss.backward()
    for (name, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
        if p.grad is not None:
            assert_close(q.grad, p.grad, atol=1e-4, rtol=1e-3, msg=lambda m, n=name: f"{n}: {m}")
