"""``training.parallel: fsdp``: the frozen base sharded across two gloo processes on the CPU
(:mod:`taskgraph.train.fsdp`). Two processes equal one with the same global batch, each holds half the base, a run
resumes across process counts and strategies, and a rank that dies ends the job with ddp's message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch.testing import assert_close

from taskgraph.spec import load_spec
from taskgraph.train import train
from taskgraph.train.run_checkpoint import list_checkpoints, read_checkpoint, spec_hash
from tests.train.conftest import REPO, spec_dict, weights
from tests.train.ddp_worker import model_for
from tests.train.fsdp_worker import ROUTERS, train_steps
from tests.train.processes import TIMEOUT, run_workers, worker_env
from tests.train.test_generative_train import mixed_spec, write_data

TOLERANCE = 1e-5


def _spec_folder(folder: Path) -> Path:
    """The tiny three-task run, sharded, 4 steps of batch 8, with nothing drawn at random in a step: no dropout (each
    process draws its own) and the private router (one process draws Poly's routing noise from the global random
    state, several from the step's seed, so a run trained partly by each would differ by that alone)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = spec_dict(folder, steps=4, eval_every=2, checkpoint_every=2, batch_size=8, parallel="fsdp")
    spec["router"] = {"kind": "private"}
    spec["model"]["config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    spec["adapters"]["dropout"] = 0.0
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def _one_process(spec_dir: Path, run: Path, **options: object) -> None:
    before = torch.get_num_threads()
    try:
        train(load_spec(spec_dir / "spec.yaml"), run, base_dir=spec_dir, threads=1, **options)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(before)


def _assert_close_runs(got: Path, want: Path) -> None:
    a, b = weights(got), weights(want)
    assert sorted(a) == sorted(b)
    for key in b:
        assert_close(a[key], b[key], rtol=0, atol=TOLERANCE, msg=lambda m, key=key: f"{key}: {m}")


def _generative_folder(folder: Path) -> Path:
    """A causal LM's run, sharded: a tiny GPT-2 with two generate tasks (greedy text, choices) and a classifier,
    4 steps of batch 8, nothing drawn at random (as :func:`_spec_folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_data(folder)
    spec = mixed_spec(folder)
    spec["model"]["config"].update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    spec["adapters"]["skills"] = len(spec["tasks"])
    spec["router"] = {"kind": "private"}
    spec["training"].update(parallel="fsdp", seed=0)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 4-step run of :func:`_spec_folder` trained by one process (``fsdp`` has nothing to shard there): its final
    model folder."""
    spec_dir = _spec_folder(tmp_path_factory.mktemp("uninterrupted"))
    _one_process(spec_dir, spec_dir / "run")
    return spec_dir / "run" / "model"


def test_the_strategy_leaves_the_spec_hash_alone(tmp_path: Path):
    spec = load_spec(_spec_folder(tmp_path) / "spec.yaml")
    assert spec.training.parallel == "fsdp"
    ddp = spec.model_copy(update={"training": spec.training.model_copy(update={"parallel": "ddp"})})
    assert spec_hash(spec) == spec_hash(ddp)
    assert "parallel" not in ddp.model_dump(mode="json")["training"]  # the default dumps as before the field


def test_an_encoder_decoder_base_is_refused():
    from taskgraph.model import TaskGraphModel
    from taskgraph.train.distributed import DataParallel
    from taskgraph.train.fsdp import shard_base
    from taskgraph.train.run_setup import TrainingError
    from tests.model.test_generative import lm_spec

    model = TaskGraphModel(lm_spec("t5"))
    with pytest.raises(TrainingError, match="encoder-decoder base .* use training.parallel: ddp"):
        shard_base(model, DataParallel(0, 2, torch.device("cpu"), "gloo"))  # refused before any process joins


def test_only_a_backend_error_reads_as_a_lost_peer():
    """Inside the sharded forward a backend's error (its type, or raised where torch.distributed waits on a
    collective) is ddp's lost-peer message; a model's error, or FSDP's own check, passes as it is."""
    import torch.distributed as dist

    from taskgraph.train.distributed import DataParallel, DistributedError

    parallel = DataParallel(0, 2, torch.device("cpu"), "gloo")
    with pytest.raises(DistributedError, match=r"rank 0 of 2: lost the other processes while stepping \(gone\)"):
        with parallel.together("stepping"):
            raise dist.DistBackendError("gone. More words")
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes"):
        with parallel.together("stepping"):
            torch.zeros(2, 3) @ torch.zeros(2, 3)


def test_two_sharded_processes_equal_one_and_hold_half_the_base(tmp_path: Path):
    """Poly and graph: three steps of two processes of batch 8 with the base sharded equal one process of batch 16,
    every weight to 1e-5, and ddp's two processes bit for bit; the base gathered for the save is the base; each
    process holds half the frozen base.
    Then a causal LM's run (generate tasks: the LM head and greedy generation in every process's validation) that
    one process trained to its step-2 checkpoint goes on under fsdp in the two: it equals the run one process
    trained uninterrupted."""
    spec_dir = _generative_folder(tmp_path / "data")
    _one_process(spec_dir, spec_dir / "run", max_steps=2)
    alone = _generative_folder(tmp_path / "alone")
    _one_process(alone, alone / "run")
    run_workers("tests.train.fsdp_worker", str(tmp_path), str(spec_dir))
    torch.set_num_threads(1)
    for router in ROUTERS:
        reference = model_for(router)
        train_steps(reference, None)
        want = reference.state_dict()
        got = load_file(str(tmp_path / f"{router}.safetensors"))
        assert sorted(got) == sorted(want), router
        worst = max(float((got[k].double() - want[k].double()).abs().max()) for k in want)
        assert worst <= TOLERANCE, (router, worst)
        trained = {n for n, p in reference.named_parameters() if p.requires_grad}
        assert all(torch.equal(got[k], want[k]) for k in want if k not in trained)  # the frozen base, gathered
        for rank in range(2):  # sharding the frozen base changes no number: the same weights as ddp, bit for bit
            ddp = load_file(str(tmp_path / f"{router}-ddp-rank{rank}.safetensors"))
            assert sorted(ddp) == sorted(trained) and all(torch.equal(ddp[k], got[k]) for k in ddp), (router, rank)
        for rank in range(2):
            sizes = json.loads((tmp_path / f"{router}-bytes-rank{rank}.json").read_text())
            (held_before, whole), (held, whole_after) = sizes["before"], sizes["after"]
            assert held_before == whole == whole_after and sizes["blocks"] == 2
            assert held == whole // 2, (router, rank, sizes)  # every dim 0 of the tiny BERT is even: no padding

    results = [json.loads((tmp_path / f"result-rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["step"], r["resumed_from"]) for r in results] == [(0, 4, 2), (1, 4, 2)]
    assert results[0]["acc"] == results[1]["acc"] and set(results[0]["acc"]) == {"sum", "rt-gen", "rt"}
    for r in results:  # the loop sharded the LM: half of it, but for the input embedding its output layer shares
        held, whole = r["bytes"]
        assert whole // 2 < held <= 0.52 * whole, r["bytes"]
    run = spec_dir / "run"
    assert json.loads((run / "train.json").read_text())["processes"] == 2
    assert [p.name for p in list_checkpoints(run)] == ["step-000002", "step-000004"]
    _assert_close_runs(run / "model", alone / "run" / "model")
    logged = [[json.loads(line) for line in (r / "log.jsonl").read_text().splitlines()] for r in (run, alone / "run")]
    assert [r["step"] for r in logged[0]] == [r["step"] for r in logged[1]]
    for got, want in zip(*logged):
        assert abs(got.get("loss", 0.0) - want.get("loss", 0.0)) <= TOLERANCE and got.get("acc") == want.get("acc")


def test_a_rank_that_dies_ends_the_job_and_one_process_resumes(tmp_path: Path, uninterrupted: Path):
    """torchrun, 2 sharded processes; rank 1 exits hard after step 3: ddp's message naming the step-2 checkpoint
    (written by rank 0 from the gathered base), then one process resumes it and equals the uninterrupted run."""
    spec_dir = _spec_folder(tmp_path)
    run = spec_dir / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["--monitor-interval", "0.2", "--log-dir", str(tmp_path / "torchrun-logs")]
    command += ["-m", "taskgraph", "train", str(spec_dir / "spec.yaml"), "--out", str(run)]
    done = subprocess.run(
        command,
        cwd=REPO,
        env=worker_env(TASKGRAPH_FAULT_AT_STEP="3", TASKGRAPH_FAULT_RANK="1"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode != 0
    assert "rank 0 of 2" in done.stderr and "step-000002" in done.stderr, done.stderr[-3000:]
    ours = done.stderr.split("Traceback")[0]
    assert (
        "error: rank 0 of 2: lost the other processes" in ours or "error: rank 0 of 2: stopped by the launcher" in ours
    ), done.stderr[-3000:]
    assert done.stderr.count("Traceback") == 1 and "ChildFailedError" in done.stderr  # torchrun's, not ours
    assert [p.name for p in list_checkpoints(run)] == ["step-000002"]
    read_checkpoint(run / "checkpoints" / "step-000002", load_spec(run / "spec.yaml"))
    assert not (run / "model").exists()

    from taskgraph.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["train", "--out", str(run), "--resume", "--threads", "1"]) == 0  # one process, unsharded
    finally:
        torch.set_num_threads(before)
    assert json.loads((run / "train.json").read_text())["resumed_from"] == 2
    _assert_close_runs(run / "model", uninterrupted)
