"""``taskgraph merge`` / ``merge_runs`` on a routed run and on single-task runs, for every method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from taskgraph.cli import main
from taskgraph.cli.merge import METHODS
from taskgraph.eval import evaluate_run
from taskgraph.merge import LowRank, merge_runs
from taskgraph.merge.merging import SEED_STRIDE
from taskgraph.merge.subspace import subspace_merge
from taskgraph.model import TaskGraphModel, unload
from taskgraph.model.pooling import pool
from taskgraph.registry import MERGES
from tests.merge.conftest import TASKS

IDS = torch.randint(1, 64, (5, 8), generator=torch.Generator().manual_seed(0))
MASK = torch.ones_like(IDS)
FIXED = {
    "task-arithmetic": ["--lambda", "0.6"],
    "average": [],
    "ties": ["--lambda", "0.9", "--density", "0.5"],
    "dare": ["--lambda", "0.4", "--p", "0.5", "--seed", "3"],
    "dare-ties": ["--lambda", "0.8", "--p", "0.3"],
    "subspace": ["--lambda", "0.7", "--rank", "3"],
}


def merge(*args: object) -> int:
    return main(["merge", *map(str, args)])


def logits(model: TaskGraphModel, task: str) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IDS, MASK, task).logits[:, : model.num_labels[model.task_index(task)]]


def plain_logits(base: torch.nn.Module, head: torch.nn.Linear, pooling: str = "mean") -> torch.Tensor:
    with torch.no_grad():
        hidden = base(input_ids=IDS, attention_mask=MASK).last_hidden_state
        return head(pool(pooling, hidden, MASK))


def reference_merge(
    sources: list[Path], method: str, values: dict[str, float], rank: int | None, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The merged ΔW of every module, recomputed from the source runs' folds with the pure functions."""
    models = [TaskGraphModel.from_pretrained(s / "model") for s in sources]
    folds = [(m, m.fold(t)) for m in models for t in m.task_names]
    out = {}
    for index, name in enumerate(models[0].adapted_names):
        ups = [LowRank(f.modules[name].A, f.modules[name].B * f.modules[name].scaling) for _, f in folds]
        gen = torch.Generator().manual_seed(seed * SEED_STRIDE + index)
        if method == "subspace":
            out[name] = subspace_merge(ups, rank or 2, "sum", values["lambda"]).dense()
            continue
        deltas = torch.stack([u.dense() for u in ups])  # [T, d_out, d_in]
        merged = MERGES.get(method).obj().combine(deltas, values, gen)
        if rank is not None:
            u, s, vh = torch.linalg.svd(merged.double())
            merged = ((u[:, :rank] * s[:rank]) @ vh[:rank]).float()
        out[name] = merged
    return out


@pytest.mark.parametrize("method", METHODS)
def test_every_method_merges_a_routed_run_and_eval_reads_it(runs, tmp_path, method, capsys):
    out = tmp_path / "merged"
    assert merge(runs("routed"), "--method", method, "--out", out) == 0
    printed = capsys.readouterr().out
    assert f"merged {TASKS} tasks of" in printed and f"wrote {out}" in printed
    record = json.loads((out / "merge.json").read_text())
    hyper = MERGES.get(method).obj.hyper
    assert set(record["chosen"]) == set(hyper) - ({"density"} if method == "subspace" else set())
    assert record["selected_on"] == ("val" if hyper else None)
    best = max(record["grid"], key=lambda p: p["val_mean"]) if record["grid"] else None
    if best is not None:  # the chosen point is the best validation mean of the grid (never test)
        assert record["val_mean"] == best["val_mean"] and record["chosen"] == best["values"]
    scores = evaluate_run(out, split="val", timing=False, alignment=False)
    assert scores["router"] == "shared" and list(scores["tasks"]) == record["tasks"]
    for task, acc in record["val_accuracy"].items():  # the fast scorer and the saved run agree
        assert scores["tasks"][task]["accuracy"] == pytest.approx(acc)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_single_task_runs_equals_the_pure_functions(runs, tmp_path, method):
    sources = runs("single")
    out = tmp_path / "merged"
    assert merge(*sources, "--method", method, *FIXED[method], "--out", out) == 0
    record = json.loads((out / "merge.json").read_text())
    assert record["source_kind"] == "runs" and record["tasks"] == ["planted-0", "planted-1", "planted-2"]
    values = {k: float(v) for k, v in record["chosen"].items()}
    rank = 3 if method == "subspace" else None
    want = reference_merge(sources, method, values, rank, seed=3 if method == "dare" else 0)
    merged = TaskGraphModel.from_pretrained(out / "model")
    source = TaskGraphModel.from_pretrained(sources[1] / "model")
    base = unload(source)
    with torch.no_grad():
        for name, delta in want.items():
            base.get_submodule(name).weight.add_(delta)
    expected = plain_logits(base.eval(), source.heads.heads[0])
    assert_close(logits(merged, "planted-1"), expected, rtol=1e-4, atol=1e-5)


def test_one_task_with_lambda_one_is_the_routed_task_and_fold_into_base_equals_the_run(runs, tmp_path):
    routed = TaskGraphModel.from_pretrained(runs("routed") / "model")
    out = tmp_path / "one"
    assert (
        merge(
            runs("routed"),
            "--method",
            "task-arithmetic",
            "--lambda",
            "1",
            "--tasks",
            "planted-2",
            "--fold-into-base",
            "--out",
            out,
        )
        == 0
    )
    merged = TaskGraphModel.from_pretrained(out / "model")
    assert merged.task_names == ["planted-2"] and merged.spec.router.kind == "shared"
    assert_close(logits(merged, "planted-2"), logits(routed, "planted-2"), rtol=1e-4, atol=1e-5)
    from safetensors.torch import load_file
    from transformers import AutoModel

    plain = AutoModel.from_pretrained(out / "plain").eval()
    heads = load_file(out / "plain" / "heads.safetensors")
    head = torch.nn.Linear(heads["planted-2.weight"].shape[1], heads["planted-2.weight"].shape[0])
    head.load_state_dict({"weight": heads["planted-2.weight"], "bias": heads["planted-2.bias"]})
    assert_close(plain_logits(plain, head), logits(routed, "planted-2"), rtol=1e-4, atol=1e-5)


def test_llora_task_arithmetic_is_task_arithmetic_on_the_task_vectors(runs, tmp_path):
    """L-LoRA (B₀ = 0): merging the exact updates equals φ = φ₀ + λ Σ_t (φ_t − φ₀) in parameter space."""
    sources = runs("single-llora")
    result = merge_runs(sources, method="task-arithmetic", params={"lambda": 0.4}, out_dir=tmp_path / "m")
    models = [TaskGraphModel.from_pretrained(s / "model") for s in sources]
    combined = TaskGraphModel.from_pretrained(sources[0] / "model")
    with torch.no_grad():
        for index, (_, layer) in enumerate(combined.adapted):
            taus = [m.adapted[index][1].B - m.adapted[index][1].B0 for m in models]
            layer.B.copy_(layer.B0 + 0.4 * sum(taus))  # φ₀ + λ Σ τ_t (A is inert while B₀ = 0)
    assert_close(logits(result.model, "planted-0"), logits(combined, "planted-0"), rtol=1e-4, atol=1e-5)
    assert result.record["rank"] == 2 and result.record["linearized"]  # one shared A₀: the sum of three is rank r


def test_llora_linearised_around_a_nonzero_b0_merges_its_task_vector(runs, tmp_path):
    """B₀ ≠ 0: the update at φ₀ is added back once, so one task at λ = 1 is the routed task exactly."""
    routed = TaskGraphModel.from_pretrained(runs("llora-b0") / "model")
    assert all(
        layer.fold(torch.ones(1, layer.skills) / layer.skills, 1.0)[0].shape[0] == 4 for _, layer in routed.adapted
    )  # folds of rank 2r
    result = merge_runs([runs("llora-b0")], method="task-arithmetic", tasks=["planted-1"], params={"lambda": 1})
    assert_close(logits(result.model, "planted-1"), logits(routed, "planted-1"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("router", ["graph", "mhr", "private"])
def test_other_routers_fold_then_merge(runs, router):
    source = TaskGraphModel.from_pretrained(runs(router) / "model")
    result = merge_runs([runs(router)], method="average", tasks=["planted-0"])
    assert_close(logits(result.model, "planted-0"), logits(source, "planted-0"), rtol=1e-4, atol=1e-5)


def test_python_api_returns_what_the_cli_saves(runs, tmp_path):
    result = merge_runs(
        [runs("routed")], method="ties", params={"lambda": "auto", "density": 0.5}, out_dir=tmp_path / "m"
    )
    assert result.out_dir == tmp_path / "m" and result.chosen["density"] == 0.5
    saved = TaskGraphModel.from_pretrained(tmp_path / "m" / "model")
    assert_close(logits(saved, "planted-3"), logits(result.model, "planted-3"))
    assert json.loads((tmp_path / "m" / "merge.json").read_text())["chosen"] == result.chosen


@pytest.mark.parametrize(
    "case, needle",
    [
        ("other-seed", "was not trained from the initialisation of"),
        ("other-base", "another base model"),
        ("duplicate", "takes each task once"),
        ("unknown-task", "--tasks: unknown task 'nope'"),
        ("method", "unknown merge method 'nope'; choose from ['average'"),
        ("params", "lambda: 2000 lies outside [0, 100]"),
        ("out-is-source", "which this command reads"),
        ("no-run", "give the folder of `taskgraph train --out RUN`"),
    ],
)
def test_bad_input_is_exit_2_with_one_paragraph(runs, tmp_path, capsys, case, needle):
    single = runs("single")
    args = {
        "other-seed": [*single, runs("other-seed"), "--method", "average"],
        "other-base": [single[0], runs("other-base"), "--method", "average"],
        "duplicate": [single[0], runs("single-again"), "--method", "average"],
        "unknown-task": [runs("routed"), "--method", "average", "--tasks", "planted-0,nope"],
        "method": [runs("routed"), "--method", "nope"],
        "params": [runs("routed"), "--method", "ties", "--lambda", "2000", "--p", "0.2"],
        "out-is-source": [runs("routed"), "--method", "average", "--out", runs("routed")],
        "no-run": [tmp_path, "--method", "average"],
    }[case]
    if "--out" not in args:
        args += ["--out", tmp_path / "out"]
    assert merge(*args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
    if case == "params":
        assert "takes no parameter 'p'" in err  # every problem at once
    if case == "other-seed":
        assert "training.seed is 1, not 0" in err and "other-seed" in err


def test_a_run_written_under_the_old_key_names_shares_the_initialisation(runs, tmp_path):
    """A single-task run saved before ``adapters.heads`` became ``splits`` merges with one saved after it."""
    import shutil

    first, second = runs("single")[:2]
    old = tmp_path / "old-run"
    shutil.copytree(second, old)
    manifest_path = old / "model" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    adapters = manifest["spec"]["adapters"]
    manifest["spec"]["adapters"] = {("heads" if k == "splits" else k): v for k, v in adapters.items()}
    manifest["spec"]["adapters"].pop("imports", None)  # a key that came later, written only when set
    manifest_path.write_text(json.dumps(manifest))
    merged = merge_runs([first, old], method="average")
    reference = merge_runs([first, second], method="average")
    assert_close(logits(merged.model, "planted-1"), logits(reference.model, "planted-1"))
