"""Trajectories: every fast path and cache of the routed model trains to where the path it replaces trains.

One step's equality (``tests/adapters/test_fused.py``) misses what only shows over many steps: a difference that
50 Adam updates grow, a cache that goes stale between two validations. So each test trains one spec twice through
:func:`taskgraph.train.train` — 50 optimizer steps with a validation every 10, interleaved as the loop does — once
with the fast path and once without, and compares every trainable parameter (adapters, router, heads) and every
validation (accuracy per task, loss) of the two runs.

The switches are the test's, patched for one run; the library has no flag for them:

=======================================  =====================================================================
fast path or cache                       the plain path
=======================================  =====================================================================
fused routed factors (``fuse_layers``)   the model the loop builds gets ``fuse_layers = False``
graph router's inference encoding cache  ``GraphRouter._cached_encoding`` runs ``encode()`` on every call
relation slot plan (``_SlotPlan``)       ``RelationMatrix._plan`` rebuilt on every call (sparse, moving slots)
all pairs as relation slots (dense)      ``router.dense_limit: 1``: sparse slots, ``top_k`` = T − 1
dense structure rounds (mean adjacency)  ``DENSE_STRUCTURE_LIMIT = 0``: PyG's gather / scatter-mean convs
stacked structure rounds                 ``STACKED_STRUCTURE_LIMIT = 0``: the mean adjacency per edge type
=======================================  =====================================================================

**Tolerance: none — the two runs must be bitwise equal** (fp32, CPU, one thread; measured max |Δ| = 0 for every
path here, and under six other seeds). No tolerance could tell rounding from a bug: the centred read-out leaves
directions the loss cannot see (``router.query.bias``, ``router.key.bias``, the adapter LayerNorm's bias), their
gradient is rounding noise, and Adam turns noise into full steps. Measured after 50 steps, the fused factors scaled
by (1 + 2⁻²³) — one ulp — at every step: max |Δ| 2.2e-2 in those biases, 4.4e-4 in the other router weights, 4.6e-7
in the adapters; scaled by (1 + 1e-3): 2.2e-2, 1.3e-3, 7.4e-5. The validation loss moves by 5e-8 and 3e-6.

Bitwise equality is a property of this setup, not luck (each test fails, and only it, when its path is put one ulp
off): the caches return what the plain call computes; the fused path gathers rows by a one-hot product (one
non-zero term per sum) and mixes the K skills in the same reduction as the per-layer einsum; the K = 4 skills give
every structure node an in-degree of 1 or 4, so the dense mean's 1/deg is exact and the product sums what PyG's
scatter-mean sums (with K = 3 they differ by rounding: 3.7e-2 in the gate weights at step 50, 1.4e-6 in the
validation loss). Where a sum runs over another length (the relation density penalty), the test turns it off.

The model: a random-init 2-layer BERT (hidden 32), LoRA on query / value, K = 4 skills in 2 splits, adapter
dropout 0.1; the data: a planted universe of 4 tasks, 8 tokens, 80 training and 10 validation examples per task
(:mod:`taskgraph.data.planted`). The plots a run draws at its end are skipped (time; they come after the weights).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import taskgraph.report
import taskgraph.routing.structure as structure_module
import taskgraph.train.loop as loop_module
from taskgraph.data import planted_spec
from taskgraph.model import TaskGraphModel
from taskgraph.routing.graph import GraphRouter, GraphState
from taskgraph.routing.relations import RelationMatrix
from taskgraph.spec.models import Spec
from taskgraph.train import train

STEPS, EVAL_EVERY, TASKS = 50, 10, 4
Patch = Callable[[pytest.MonkeyPatch], None]


def _spec(kind: str = "graph", relations: dict[str, Any] | None = None, **router: Any) -> dict[str, Any]:
    """The runs' spec dict: router ``kind`` with ``router`` keys (the graph router's GNN hidden 16)."""
    spec = planted_spec(
        skills=4,
        tasks=TASKS,
        held_out=0,
        min_tasks_per_skill=2,
        seq_len=8,
        vocab_size=64,
        examples_per_task=100,
        hidden_size=32,
        num_heads=2,
        steps=STEPS,
        batch_size=16,
        name="trajectory",
    )
    spec["adapters"].update(splits=2, dropout=0.1)
    spec["router"] = {"kind": kind, **({"gnn": {"hidden": 16}} if kind == "graph" else {}), **router}
    spec["relations"] = relations or {}
    spec["training"].update(
        lr={"adapters": 1e-2, "router": 1e-1, "heads": 1e-2},
        warmup_steps=5,
        eval_every=EVAL_EVERY,
        checkpoint_every=STEPS,
        keep_checkpoints=1,
        seed=0,
    )
    return spec


@dataclass(frozen=True)
class Trajectory:
    """Where one run ended: every trainable parameter, and the validation records of its log in order."""

    params: dict[str, torch.Tensor]
    validations: list[dict[str, Any]]
    model: TaskGraphModel


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(folder: Path, spec: dict[str, Any], *patches: Patch) -> Trajectory:
    """Train ``spec`` into ``folder/run`` with ``patches`` applied for the run's length only."""
    with pytest.MonkeyPatch.context() as mp, _one_thread():
        mp.setattr(taskgraph.report, "write_run_plots", lambda run, model=None: [])
        for patch in patches:
            patch(mp)
        result = train(Spec.model_validate(spec), folder / "run")
    assert result.completed and result.step == STEPS
    params = {n: p.detach().clone() for n, p in result.model.named_parameters() if p.requires_grad}
    lines = [json.loads(line) for line in (folder / "run" / "log.jsonl").read_text().splitlines()]
    validations = [r for r in lines if r["split"] == "val"]
    assert [r["step"] for r in validations] == list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY))
    return Trajectory(params, validations, result.model)


def assert_same_trajectory(fast: Trajectory, plain: Trajectory) -> None:
    """Every trainable parameter bitwise equal, every validation (accuracies and loss) equal."""
    assert fast.params.keys() == plain.params.keys()
    assert {"base", "heads"} <= {n.split(".")[0] for n in fast.params}  # the adapters live in the base
    different = {
        name: float((fast.params[name] - plain.params[name]).abs().max())
        for name in fast.params
        if not torch.equal(fast.params[name], plain.params[name])
    }
    assert not different, f"{len(different)} of {len(fast.params)} parameters differ, max |Δ|: {different}"
    assert fast.validations == plain.validations


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Trajectory:
    """The graph router's run with every fast path on (the library's defaults), shared by the tests below."""
    return _train(tmp_path_factory.mktemp("reference"), _spec())


def test_the_reference_run_moves_what_the_tests_compare(reference: Trajectory) -> None:
    assert {n.split(".")[0] for n in reference.params} == {"base", "router", "heads"}
    adapters_b = [p for n, p in reference.params.items() if n.endswith(".B")]
    assert len(adapters_b) == 4 and all(bool(b.abs().min() > 0) for b in adapters_b)  # every B left its zero start
    losses = [r["loss"] for r in reference.validations]
    assert len(set(losses)) == len(losses)  # every validation saw other weights


# ---- 1. fused routed factors vs the per-layer path
@pytest.mark.parametrize("kind", ["graph", "private"])  # mixed skills with gates; one-hot skill selection
def test_fused_layers_train_like_the_per_layer_path(kind: str, reference: Trajectory, tmp_path: Path) -> None:
    def per_layer(mp: pytest.MonkeyPatch) -> None:
        def build(spec: Spec) -> TaskGraphModel:
            model = TaskGraphModel(spec)
            model.fuse_layers = False
            return model

        mp.setattr(loop_module, "TaskGraphModel", build)

    fast = reference if kind == "graph" else _train(tmp_path / "fused", _spec(kind))
    plain = _train(tmp_path / "per-layer", _spec(kind), per_layer)
    assert fast.model.fuse_layers and not plain.model.fuse_layers
    assert_same_trajectory(fast, plain)


# ---- 2. the graph router's inference encoding cache vs encoding on every call
def test_encoding_cache_validates_like_encoding_every_call(reference: Trajectory, tmp_path: Path) -> None:
    encoded = []

    def uncached(mp: pytest.MonkeyPatch) -> None:
        def encode_each_call(self: GraphRouter) -> GraphState:
            encoded.append(1)
            return self.encode()

        mp.setattr(GraphRouter, "_cached_encoding", encode_each_call)

    plain = _train(tmp_path, _spec(), uncached)
    assert len(encoded) >= TASKS * len(plain.validations)  # every task's batches of every validation: afresh
    assert_same_trajectory(reference, plain)


# ---- 3. the relation slots: all pairs vs sparse slots, and the slot plan cached vs rebuilt
def test_all_pairs_train_like_sparse_slots_that_hold_every_pair(tmp_path: Path) -> None:
    """Sparse slots read out only the batch's tasks and their neighbours, and regularise the pairs touching the
    batch: the same numbers as all pairs while every batch touches every pair (checked at every step). Both runs
    without the density penalty (λ_R = 0): its mean over the 12 slots, 6 of them inactive and masked to 0, sums in
    another order than the mean over 6 pairs: with the structure product put one ulp off, the two regularisers
    came 3.7e-9 apart at step 5, and Adam grew that in the read-out's free biases (see the module docstring)."""
    touched = []
    encode_batch = GraphRouter._encode_batch

    def record(self: GraphRouter, tasks: torch.Tensor) -> tuple[GraphState, torch.Tensor]:
        state, rows = encode_batch(self, tasks)
        touched.append(state.relation_index.shape[1])
        return state, rows

    no_density = {"regularization": 0.0}
    fast = _train(tmp_path / "all-pairs", _spec(relations=no_density))
    sparse = _spec(dense_limit=1, relations={**no_density, "top_k": TASKS - 1, "refresh_every": 10})
    plain = _train(tmp_path / "sparse", sparse, lambda mp: mp.setattr(GraphRouter, "_encode_batch", record))
    assert touched == [TASKS * (TASKS - 1) // 2] * STEPS
    relations = plain.model.router.relations
    assert fast.model.router.relations.dense and not relations.dense
    assert relations.weights()[0].tolist() == torch.triu_indices(TASKS, TASKS, 1).tolist()  # the dense order
    plain.params["router.relations.theta"] = plain.params["router.relations.theta"][relations.active]
    assert_same_trajectory(fast, plain)


def test_slot_plan_cache_trains_like_a_plan_rebuilt_every_call(tmp_path: Path) -> None:
    """Each task's one nearest neighbour, refreshed every 5 steps: the active slots move during the run (a rebuilt
    plan also sends :meth:`RelationMatrix.directed` down its uncached branch, the message edges made afresh)."""
    seen: set[tuple[tuple[int, ...], ...]] = set()
    refresh, plan = RelationMatrix.refresh, RelationMatrix._plan

    def recorded(self: RelationMatrix, embeddings: torch.Tensor) -> None:
        refresh(self, embeddings)
        seen.add(tuple(sorted(map(tuple, self.index[:, self.active].T.tolist()))))

    def rebuilt(self: RelationMatrix) -> Any:
        self._slot_plan = None
        return plan(self)

    sparse = _spec(dense_limit=1, relations={"top_k": 1, "refresh_every": 5})
    fast = _train(tmp_path / "cached", sparse, lambda mp: mp.setattr(RelationMatrix, "refresh", recorded))
    assert len(seen) >= 2  # the candidate pairs changed: a stale plan would pass messages along old pairs
    plain = _train(tmp_path / "rebuilt", sparse, lambda mp: mp.setattr(RelationMatrix, "_plan", rebuilt))
    assert_same_trajectory(fast, plain)


# ---- 4. dense structure rounds vs PyG message passing
def test_dense_structure_trains_like_pyg_message_passing(tmp_path: Path) -> None:
    def means(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(structure_module, "STACKED_STRUCTURE_LIMIT", 0)

    def pyg(mp: pytest.MonkeyPatch) -> None:
        means(mp)
        mp.setattr(structure_module, "DENSE_STRUCTURE_LIMIT", 0)

    dense, plain = _train(tmp_path / "means", _spec(), means), _train(tmp_path / "pyg", _spec(), pyg)
    assert (dense.model.router.structure.mode, plain.model.router.structure.mode) == ("means", "pyg")
    assert_same_trajectory(dense, plain)


# ---- 5. the stacked structure round vs the mean adjacency per edge type: equal to rounding, not bitwise
def test_stacked_structure_trains_like_the_per_edge_type_products(reference: Trajectory, tmp_path: Path) -> None:
    """The one exception to bitwise equality: the stacked round sums every edge type's terms in one reduction (and
    the relation conv its two products in one), in another order than the per-edge-type products — one ulp here and
    there, which Adam grows in the directions the loss cannot see (the module docstring). So the test holds what the
    loss can see: the adapters within 1e-5, every validation loss within 1e-5 and every accuracy equal after 50
    steps (measured: adapters 9.1e-7, losses 4.8e-8); the per-step computation is held to 1e-6 in
    ``tests/routing/test_structure.py``, with the learning it leaves to the quality guard (``tests/quality``)."""
    plain = _train(tmp_path, _spec(), lambda mp: mp.setattr(structure_module, "STACKED_STRUCTURE_LIMIT", 0))
    assert (reference.model.router.structure.mode, plain.model.router.structure.mode) == ("stacked", "means")
    assert reference.params.keys() == plain.params.keys()
    adapters = [n for n in reference.params if n.startswith("base")]
    assert adapters
    for name in adapters:
        torch.testing.assert_close(reference.params[name], plain.params[name], rtol=0, atol=1e-5, msg=name)
    for fast, slow in zip(reference.validations, plain.validations, strict=True):
        assert abs(fast["loss"] - slow["loss"]) <= 1e-5
        assert {k: v for k, v in fast.items() if k != "loss"} == {k: v for k, v in slow.items() if k != "loss"}
