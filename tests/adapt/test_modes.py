"""Each (router, mode) trains exactly what it says: equivalences against the model right after the task was added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from taskgraph.adapt import (
    ADAPT_MODES,
    adapt_run,
    check_mode,
    plan_for,
    supported_modes,
    trainable_entries,
)
from taskgraph.adapt.run import add_new_task
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from tests.adapt.conftest import HELD_OUT, tokens

ROUTERS = ("poly", "mhr", "graph", "private", "shared", "mhr-mu")
PAIRS = [(r, m) for r in ROUTERS for m in supported_modes(r)]
NEW = f"planted-{HELD_OUT}"


def test_supported_modes_and_clear_errors_for_the_rest():
    assert supported_modes("poly") == supported_modes("mhr") == ("full", "routing", "mhr-mu")
    assert supported_modes("graph") == ("full", "routing", "zero-shot")
    assert supported_modes("private") == supported_modes("shared") == supported_modes("mhr-mu") == ("full", "mhr-mu")
    assert supported_modes("mlp") == ()
    with pytest.raises(
        ModelError, match=r"zero-shot .* only the graph router .* supports \['full', 'routing', 'mhr-mu'\]"
    ):
        check_mode("poly", "zero-shot")
    with pytest.raises(ModelError, match=r"router 'private' has no routing to learn"):
        check_mode("private", "routing")
    with pytest.raises(ModelError, match=r"softmax"):
        check_mode("graph", "mhr-mu")
    with pytest.raises(ModelError, match=r"unknown adaptation mode 'lora'; choose from"):
        check_mode("poly", "lora")
    assert len(PAIRS) == 15 and {m for _, m in PAIRS} == set(ADAPT_MODES)


def adapted(
    make_run, tmp_path: Path, router: str, mode: str, **kw
) -> tuple[Path, dict, TaskGraphModel, TaskGraphModel]:
    """Adapt; returns (run, adapt.json, the model right after the task was added, the adapted model)."""
    run = make_run(router, heads=2 if router == "mhr" else 1)
    relate = {"planted-0": 0.8, "planted-3": 0.4} if mode == "zero-shot" else None
    args = {
        "task": NEW,
        "data": {"source": "planted", "task": HELD_OUT},
        "shots": 12,
        "mode": mode,
        "out_dir": tmp_path / "out",
        "relate": relate,
        "steps": 3,
        "seed": 0,
    }
    args.update(kw)
    result = adapt_run(run, **args)
    record = json.loads((result.out_dir / "adapt.json").read_text())
    assert record == json.loads(json.dumps(result.record))
    ref = TaskGraphModel.from_pretrained(run / "model").eval()
    add_new_task(
        ref, plan_for(router, mode), NEW, record["num_labels"], record["relate"] or {}, seed=0, data=record["data"]
    )
    return run, record, ref, TaskGraphModel.from_pretrained(result.out_dir / "model").eval()


@pytest.mark.parametrize("router, mode", PAIRS)
def test_phase_one_changes_exactly_the_mode_entries(make_run, tmp_path, router, mode):
    run, record, ref, out = adapted(make_run, tmp_path, router, mode)
    plan, index = plan_for(router, mode), ref.task_index(NEW)
    entries = {f"{e.name}": e for e in trainable_entries(ref, plan, index)}
    assert record["trainable_parameters"] == {name: e.count() for name, e in entries.items()}
    assert record["trainable"] == sum(e.count() for e in entries.values())
    assert record["other_tasks_change"] == (mode != "zero-shot" and plan.adapters == "all")
    moved = 0
    for key, before in ref.state_dict().items():
        after = out.state_dict()[key]
        if key.startswith(f"heads.heads.{index}."):
            continue  # the refit head
        if key not in entries:
            assert torch.equal(after, before), f"{key} changed but {mode} does not train it"
            continue
        mask = entries[key].mask
        keep = torch.ones_like(before, dtype=torch.bool) if mask is None else mask.expand_as(before)
        assert torch.equal(after[~keep], before[~keep]), f"{key}: entries outside the mask changed"
        moved += int((after[keep] != before[keep]).sum())
    assert (moved > 0) == (mode != "zero-shot"), "phase 1 moved nothing" if mode != "zero-shot" else moved

    # what the other tasks see
    source = TaskGraphModel.from_pretrained(run / "model").eval()
    ids = tokens(6)
    for task in (0, 5):
        logits, before = out(ids, None, task).logits, source(ids, None, task).logits
        if record["other_tasks_change"]:
            continue
        if router in ("poly", "mhr") and mode == "routing" or router == "private":
            assert torch.equal(logits, before)  # bit for bit
        else:  # graph (a node more in the message passing), own skill (one zero-weighted skill more in the sum)
            assert torch.equal(logits, ref(ids, None, task).logits)
            assert_close(logits, before, rtol=0, atol=1e-5)
    if record["other_tasks_change"]:
        assert not torch.equal(out(ids, None, 0).logits, source(ids, None, 0).logits)


def test_zero_shot_takes_no_gradient_step_and_needs_relations(make_run, tmp_path):
    run, record, _, out = adapted(make_run, tmp_path, "graph", "zero-shot")
    assert (record["steps"], record["trainable"], record["loss"], record["lr"]) == (0, 0, None, None)
    assert record["relate"] == {"planted-0": 0.8, "planted-3": 0.4}
    assert out.spec.router.params.zero_shot == [NEW]
    with pytest.raises(ModelError, match="needs the new task's relations: give relate"):
        adapt_run(
            run,
            task=NEW,
            data={"source": "planted", "task": HELD_OUT},
            shots=8,
            mode="zero-shot",
            out_dir=tmp_path / "o2",
        )
    with pytest.raises(ModelError, match="relate nope=0.5: unknown task 'nope'"):
        adapt_run(
            run,
            task=NEW,
            data={"source": "planted", "task": HELD_OUT},
            shots=8,
            mode="zero-shot",
            out_dir=tmp_path / "o2",
            relate={"nope": 0.5},
        )
    assert not (tmp_path / "o2").exists()


def test_graph_few_shot_defaults_to_neutral_relations_with_every_trained_task(make_run, tmp_path):
    _, record, _, _ = adapted(make_run, tmp_path, "graph", "routing")
    assert record["relate"] == {f"planted-{t}": 0.5 for t in range(8)}
    assert record["trainable_parameters"] == {"router.task_embedding": 16, "router.relations.theta": 8}


def test_static_routers_refuse_relations(make_run, tmp_path):
    with pytest.raises(ModelError, match="relate seeds the new node of a graph router"):
        adapt_run(
            make_run("poly"),
            task=NEW,
            data={"source": "planted", "task": HELD_OUT},
            shots=8,
            mode="routing",
            out_dir=tmp_path / "o",
            relate={"planted-0": 0.5},
        )


def test_the_head_protocol_does_not_depend_on_the_mode(make_run, tmp_path):
    """With no phase-1 step, full and routing leave the same model, so the refit heads are bit-identical."""
    run = make_run("poly")
    heads = []
    for mode in ("full", "routing"):
        result = adapt_run(
            run,
            task=NEW,
            data={"source": "planted", "task": HELD_OUT},
            shots=12,
            mode=mode,
            out_dir=tmp_path / mode,
            steps=0,
        )
        head = TaskGraphModel.from_pretrained(result.out_dir / "model").heads.heads[-1]
        heads.append((head.weight.detach(), head.bias.detach(), result.test))
    assert torch.equal(heads[0][0], heads[1][0]) and torch.equal(heads[0][1], heads[1][1])
    assert heads[0][2] == heads[1][2]


def test_same_seed_same_run_other_seed_other_shots(make_run, tmp_path):
    a = adapt_run(
        make_run("poly"),
        task=NEW,
        data={"source": "planted", "task": HELD_OUT},
        shots=12,
        mode="full",
        out_dir=tmp_path / "a",
        steps=3,
    )
    b = adapt_run(
        make_run("poly"),
        task=NEW,
        data={"source": "planted", "task": HELD_OUT},
        shots=12,
        mode="full",
        out_dir=tmp_path / "b",
        steps=3,
    )
    c = adapt_run(
        make_run("poly"),
        task=NEW,
        data={"source": "planted", "task": HELD_OUT},
        shots=12,
        mode="full",
        out_dir=tmp_path / "c",
        steps=3,
        seed=1,
    )
    assert a.record["loss"] == b.record["loss"] and a.test == b.test
    wa, wb = (load_file(str(r.out_dir / "model" / "model.safetensors")) for r in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert c.record["shot_rows"] != a.record["shot_rows"]
