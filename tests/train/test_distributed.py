"""Data-parallel training on CPU with two gloo processes: two processes of batch 8 take the same step as
one process of batch 16; a run under torchrun writes one run folder; a process that dies ends the job with a
message and an intact checkpoint, which one process resumes."""

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
from taskgraph.train.distributed import DataParallel
from taskgraph.train.run_checkpoint import list_checkpoints, read_checkpoint
from tests.train.conftest import REPO, spec_dict
from tests.train.ddp_worker import ROUTERS, one_step
from tests.train.processes import TIMEOUT, run_workers, worker_env


def _spec_folder(folder: Path, **training: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = spec_dict(folder, **training)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def test_shards_are_contiguous_and_cover_the_batch():
    for world in (1, 2, 3, 5):
        parts = [DataParallel(r, world, torch.device("cpu"), "gloo").shard(16) for r in range(world)]
        assert [i for p in parts for i in range(16)[p]] == list(range(16))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_two_processes_of_batch_8_equal_one_of_batch_16(tmp_path: Path):
    """Gradients ≤ 1e-6 and weights after AdamW for poly, mhr, private and graph (a task absent from one rank's
    half included), then a short run under the same two processes: one run folder, written by rank 0."""
    spec_dir = _spec_folder(tmp_path / "data", steps=4, eval_every=2, checkpoint_every=2, batch_size=8)
    run_workers("tests.train.ddp_worker", str(tmp_path), str(spec_dir))
    torch.set_num_threads(1)
    for router in ROUTERS:
        reference = one_step(router, None)  # one process, the whole batch
        ranks = [load_file(str(tmp_path / f"{router}-rank{r}.safetensors")) for r in range(2)]
        assert ranks[0].keys() == ranks[1].keys() == reference.keys(), router
        assert any(k.startswith("grad.heads.heads.0") for k in reference)  # task 0's head: absent from rank 1
        lr = 0.1  # the worker's largest learning rate (router)
        compared = total = 0
        for key, want in reference.items():
            got = [ranks[r][key].to(want.dtype) for r in range(2)]
            grad = reference.get("grad." + key.removeprefix("weight."))
            if key.startswith("weight.") and grad is not None:
                # AdamW's first step moves an entry by about lr · sign(g): where the true gradient is 0 the
                # computed one is rounding noise (~1e-9: the graph router's centred read-out) and so is its sign.
                # Weights are compared to 1e-6 where the gradient is clearly not 0, and bounded by 2 lr elsewhere.
                sure = grad.abs() > 1e-5
                compared, total = compared + int(sure.sum()), total + sure.numel()
                for r in range(2):
                    assert_close(got[r][sure], want[sure], rtol=0, atol=1e-6, msg=f"{router} rank {r} {key}")
                    assert float((got[r] - want).abs().max()) <= 2.2 * lr
            else:  # gradients and the whole batch's losses
                for r in range(2):
                    assert_close(got[r], want, rtol=0, atol=1e-6, msg=f"{router} rank {r} {key}")
        assert compared > 0.85 * total, router
    run = spec_dir / "run"
    results = [json.loads((tmp_path / f"result-rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in results] == [0, 1] and results[0]["step"] == results[1]["step"] == 4
    assert results[0]["mean_acc"] == results[1]["mean_acc"] and results[0]["heads"] == results[1]["heads"]
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "train"] == [1, 2, 3, 4]  # rank 0 alone logs
    assert (run / "train.json").is_file() and (run / "model").is_dir()
    assert [p.name for p in list_checkpoints(run)] == ["step-000002", "step-000004"]


def test_a_rank_that_dies_ends_the_job_and_one_process_resumes(tmp_path: Path):
    """torchrun, 2 processes; rank 1 exits hard after step 3: exit ≠ 0, a message naming the intact last
    checkpoint (step 2), no final files; then one process resumes the run from it to the end."""
    spec_dir = _spec_folder(tmp_path, steps=6, eval_every=3, checkpoint_every=2, batch_size=8)
    run = spec_dir / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--monitor-interval",
        "0.2",
        "--log-dir",
        str(tmp_path / "torchrun-logs"),  # not a torchelastic_* folder left in the system's temp
        "-m",
        "taskgraph",
        "train",
        str(spec_dir / "spec.yaml"),
        "--out",
        str(run),
    ]
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
    ours = done.stderr.split("Traceback")[0]  # what our processes printed, before the launcher's own report
    # rank 0 sees rank 1's connection close, or torchrun's SIGTERM first: either way one message, and the checkpoint
    assert (
        "error: rank 0 of 2: lost the other processes" in ours or "error: rank 0 of 2: stopped by the launcher" in ours
    )
    assert done.stderr.count("Traceback") == 1 and "ChildFailedError" in done.stderr  # torchrun's, not ours
    assert "traceback : error: rank 0 of 2:" in done.stderr  # its failure table shows rank 0's message (error file)
    assert [p.name for p in list_checkpoints(run)] == ["step-000002"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002"]  # nothing half-written
    read_checkpoint(run / "checkpoints" / "step-000002", load_spec(run / "spec.yaml"))
    assert not (run / "train.json").exists() and not (run / "model").exists()

    from taskgraph.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["train", "--out", str(run), "--resume", "--threads", "1"]) == 0  # one process, global batch 8
    finally:
        torch.set_num_threads(before)
    summary = json.loads((run / "train.json").read_text())
    assert summary["steps"] == 6 and summary["resumed_from"] == 2
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_bad_timeout_is_named(monkeypatch: pytest.MonkeyPatch, value: str):
    from taskgraph.train.distributed import DistributedError, data_parallel_from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("TASKGRAPH_DIST_TIMEOUT", value)
    with pytest.raises(DistributedError, match="TASKGRAPH_DIST_TIMEOUT"):
        data_parallel_from_env(torch.device("cpu"))


def test_the_readmes_torchrun_commands_are_taskgraph_commands():
    """Every ``torchrun ... -m taskgraph ...`` line of the README: torchrun's own options are ones it has, and what
    follows ``-m taskgraph`` parses as the CLI's train command (the two-process CPU form runs in the tests above)."""
    import re
    import shlex

    from torch.distributed.run import get_args_parser

    from taskgraph.cli import build_parser

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    guide = (REPO / "docs" / "guide" / "distributed.md").read_text(encoding="utf-8")  # docs/guide/distributed.md
    section = readme[readme.index("## Several processes") :]
    section = section[: section.index("\n## ")] + "\n" + guide
    lines = [line for line in section.splitlines() if line.startswith("torchrun ")]
    assert len(lines) >= 4, lines
    launched = [line for line in section.splitlines() if line.startswith("taskgraph train ")]
    assert launched, "the section shows taskgraph's own launcher (--nproc-per-node)"
    for line in launched:
        args = build_parser().parse_args(shlex.split(re.sub(r"\s+#.*$", "", line))[1:])
        assert args.command == "train" and args.out and args.nproc_per_node, line
    for line in lines:
        words = shlex.split(re.sub(r"\s+#.*$", "", line))
        cut = words.index("-m")
        launcher = get_args_parser().parse_args(words[1:cut] + ["script"])
        assert launcher.nproc_per_node and words[cut + 1] == "taskgraph"
        args = build_parser().parse_args(words[cut + 2 :])
        assert args.command == "train" and args.out, line
