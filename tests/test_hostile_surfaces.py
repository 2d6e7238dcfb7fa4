"""Hostile input on the newer surfaces — merge of a mixed causal-LM run, non-finite weights, long output names,
PEFT folders read back by ``adapters.imports``, the data-parallel timeout, bench options and a generative
``adapt`` — is exit 2 with one paragraph (what, where, what is allowed), never a traceback, and writes nothing.

Two runs are built once per module: the tiny JSONL text run of :mod:`tests.hostile` and a mixed run (two generative
tasks and a classifier) on a tiny GPT-2 whose trainable tensors hold random values. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
import yaml
from torch.testing import assert_close

from taskgraph.atomic import HOST, clean_stale, is_stale, is_temp
from taskgraph.data import tokenizer_pad_id
from taskgraph.model import TaskGraphModel, merge_task
from taskgraph.spec import spec_from_dict
from taskgraph.train.batches import load_task_data
from taskgraph.train.evaluate import evaluate
from tests.hostile import Outcome, TinyRun, cli, copy_run, train_tiny_run, tree

PYDANTIC_MARKS = ("errors.pydantic.dev", "validation error for", "[type=")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return train_tiny_run(tmp_path_factory.mktemp("surfaces"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 run folder (``RUN/model``) of the tasks ``sum`` (free text), ``rt-gen`` (choices) and ``rt``
    (classification, 128 reviews: 13 validation rows), data paths absolute, every trainable tensor random."""
    from tests.model.test_generative import trained
    from tests.train.test_generative_train import mixed_spec, write_data

    folder = tmp_path_factory.mktemp("mixed")
    write_data(folder)
    words = ["good", "bad", "fun", "dull"]
    reviews = [{"text": f"the movie was {a} {b}", "label": int(b in ("good", "fun"))} for a in words for b in words]
    (folder / "rt.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews * 8))
    spec = mixed_spec(folder)
    for task in spec["tasks"]:
        task["data"]["path"] = str(folder / task["data"]["path"])
    trained(spec_from_dict(spec), seed=7).save_pretrained(folder / "run" / "model")
    return folder / "run"


def refused(outcome: Outcome, *fragments: str) -> str:
    """The stderr of an exit-2 refusal that holds every fragment and no traceback or raw pydantic report."""
    assert outcome.code == 2 and not outcome.traceback, outcome.err
    for fragment in (*fragments,):
        assert fragment in outcome.err, outcome.err
    assert not any(mark in outcome.err for mark in PYDANTIC_MARKS), outcome.err
    return outcome.err


# ----------------------------------------------------------------------------- merge of a causal-LM run
@pytest.mark.parametrize("tasks", [["rt"], ["sum", "rt-gen"], None], ids=["classifier", "generative", "all"])
def test_merging_a_mixed_causal_lm_run_scores_every_task_as_validation_does(
    mixed: Path, tmp_path: Path, tasks: list[str] | None
) -> None:
    """Before: the classifier's grid search read ``last_hidden_state`` of the LM's output (AttributeError, exit 1);
    a generative task's validation split was encoded as a classifier's and called unreadable (exit 2)."""
    out = tmp_path / "merged"
    argv = ["merge", str(mixed), "--method", "task-arithmetic", "--out", str(out)]
    outcome = cli(argv + ([] if tasks is None else ["--tasks", ",".join(tasks)]))
    assert outcome.code == 0 and not outcome.traceback, outcome.err
    record = json.loads((out / "merge.json").read_text())
    assert record["selected_on"] == "val" and len(record["grid"]) > 1
    assert any(0 < a < 1 for a in record["val_accuracy"].values())  # a score that can be wrong
    model = TaskGraphModel.from_pretrained(out / "model")
    pad_id = tokenizer_pad_id(model.tokenizer)
    vocab = model.base.get_input_embeddings().num_embeddings
    data = load_task_data(
        model.spec,
        ".",
        tokenizer=model.tokenizer,
        pad_id=pad_id,
        vocab_size=vocab,
        splits=("val",),
        lm=model.lm_info(),
    )
    expected = evaluate(model, data["val"], pad_id=pad_id).acc  # the merged run, scored as validation scores it
    assert record["val_accuracy"] == pytest.approx(expected)
    assert list(expected) == (tasks or ["sum", "rt-gen", "rt"])


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_a_classifier_merged_alone_from_a_language_model_run_loads_and_equals_its_fold(
    tmp_path: Path, family: str
) -> None:
    """The merged spec of classification tasks alone loads the classifier's base (``GPT2Model``, ``T5EncoderModel``);
    before, the merged run was saved on the LM (``GPT2LMHeadModel``) and no command could load it again."""
    from taskgraph.merge import merge_runs
    from tests.model.test_generative import lm_spec, trained

    source = trained(lm_spec(family), seed=3)
    source.save_pretrained(tmp_path / "run" / "model")
    merge_runs(
        [tmp_path / "run"], method="task-arithmetic", tasks=["c"], params={"lambda": 1.0}, out_dir=tmp_path / "m"
    )
    merged = TaskGraphModel.from_pretrained(tmp_path / "m" / "model").eval()
    assert merged.lm_kind is None and merged.task_names == ["c"]
    ids = torch.randint(3, 100, (4, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert_close(merged(ids, mask, "c").logits, source.eval()(ids, mask, "c").logits[:, :3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_merge_task_of_a_language_models_classifier_gives_the_routed_logits(family: str) -> None:
    """Before: ``MergedTaskModel`` read ``last_hidden_state`` of the LM's output (AttributeError)."""
    from tests.model.test_generative import lm_spec, trained

    model = trained(lm_spec(family), seed=3)  # tasks: c classifies, g and h generate
    ids = torch.randint(3, 100, (4, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        routed = model(ids, mask, "c").logits[:, :3]  # [4, 3]
        plain = merge_task(model, "c")(ids, mask)  # [4, 3]
    assert_close(plain, routed, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- non-finite weights
def _poison(model_dir: Path, suffix: str, value: float) -> str:
    """Set one value of the first tensor whose name ends with ``suffix`` to ``value``; the manifest's size and hash
    made to agree."""
    weights = model_dir / "model.safetensors"
    tensors = safetensors.torch.load(weights.read_bytes())
    name = sorted(k for k in tensors if k.endswith(suffix))[0]
    tensors[name].view(-1)[0] = value
    data = safetensors.torch.save(tensors, metadata={"format": "pt", "producer": "taskgraph-checkpoint"})
    weights.write_bytes(data)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["weights"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return name


READERS = {
    "merge": ["merge", "RUN", "--method", "ties", "--lambda", "0.5", "--density", "0.5", "--out", "OUT"],
    "eval": ["eval", "RUN", "--no-timing", "--no-alignment"],
    "export-peft": ["export", "RUN", "--format", "peft", "--all-tasks", "--out", "OUT"],
    "adapt": ["adapt", "RUN", "--task", "new", "--data", "DATA", "--shots", "2", "--mode", "full", "--out", "OUT"],
}
POISONS = {  # where, what: poly's routing logits may hold ±inf (a skill one task owns), never NaN
    "adapter-nan": (".A", float("nan")),
    "adapter-inf": (".B", float("inf")),
    "adapter-neg-inf": (".A", float("-inf")),
    "head-inf": ("heads.0.weight", float("inf")),
    "router-nan": ("router.logits", float("nan")),
}


@pytest.mark.parametrize("poison", list(POISONS))
@pytest.mark.parametrize("command", list(READERS))
def test_non_finite_weights_are_refused_where_the_run_is_read(
    tiny: TinyRun, tmp_path: Path, poison: str, command: str
) -> None:
    """Before: every check passed, then merge failed in the SVD (exit 1) and the other readers went on with NaN."""
    run = copy_run(tiny.run, tmp_path / "run")
    name = _poison(run / "model", *POISONS[poison])
    before = tree(run)
    subs = {"RUN": str(run), "OUT": str(tmp_path / "out"), "DATA": str(tiny.folder / "animal.jsonl")}
    refused(
        cli([subs.get(a, a) for a in READERS[command]]),
        f"{run / 'model' / 'model.safetensors'}: 1 tensor holds NaN or infinite values ({name})",
    )
    assert not (tmp_path / "out").exists() and tree(run) == before


LAYOUT_LIES = {  # field -> what the refusal says the tensors hold, given the true value
    "rank": "the tensors hold rank {} (",
    "skills": "the tensors hold K = {} (",
    "layers": "the tensors hold adapters of {} modules",
    "linearized": "the tensors hold no L-LoRA's A0 / B0",
}


@pytest.mark.parametrize("field", list(LAYOUT_LIES))
@pytest.mark.parametrize("command", ["merge", "eval"])
def test_a_manifest_layout_that_contradicts_its_tensors_is_refused(
    tiny: TinyRun, tmp_path: Path, field: str, command: str
) -> None:
    """Before: ``layout`` was written and never read, so a manifest saying rank 7 over rank-4 tensors loaded (exit 0)."""
    run = copy_run(tiny.run, tmp_path / "run")
    path = run / "model" / "manifest.json"
    manifest = json.loads(path.read_text())
    true = manifest["layout"][field]
    value = (not true) if isinstance(true, bool) else true + 3
    evidence = LAYOUT_LIES[field].format(true)
    manifest["layout"][field] = value
    path.write_text(json.dumps(manifest))
    before = tree(run)
    subs = {"RUN": str(run), "OUT": str(tmp_path / "out")}
    err = refused(
        cli([subs.get(a, a) for a in READERS[command]]), f"{path}: layout.{field} is {value!r}, but ", evidence
    )
    assert "the manifest contradicts its weights" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and tree(run) == before
    manifest["layout"][field] = "5"  # a layout of the wrong type is malformed, not a traceback
    path.write_text(json.dumps(manifest))
    refused(cli([subs.get(a, a) for a in READERS[command]]), f"{path}: the manifest is malformed: ", f"layout.{field}")


# ----------------------------------------------------------------------------- long output names
WRITERS: dict[str, tuple[list[str], str]] = {
    "merge": (["merge", "RUN", "--method", "task-arithmetic", "--lambda", "0.5", "--out", "OUT"], ""),
    "export-peft": (["export", "RUN", "--format", "peft", "--task", "sentiment", "--out", "OUT"], ""),
    "export-html": (["export", "RUN", "--format", "html", "--out", "OUT"], ".html"),
    "eval-json": (["eval", "RUN", "--no-timing", "--no-alignment", "--json", "OUT"], ".json"),
    "train": (["train", "SPEC", "--out", "OUT", "--max-steps", "1"], ""),
    "adapt": (
        ["adapt", "RUN", "--task", "new", "--data", "DATA", "--shots", "2", "--mode", "full", "--labels", "2"]
        + ["--steps", "1", "--out", "OUT"],
        "",
    ),
    "bench": (
        ["bench", "scale", "--tasks", "10", "--rounds", "2", "--warmup", "0", "--no-memory", "--threads", "1"]
        + ["--json", "OUT"],
        ".json",
    ),
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_an_output_name_that_fits_is_written_and_one_too_long_is_refused(
    tiny: TinyRun, tmp_path: Path, command: str
) -> None:
    """Before: a target of 240-255 bytes failed with ENAMETOOLONG (exit 1 or a confusing exit 2) because the temp
    file or staging folder beside it carries ~30 more bytes; a target too long for the file system was exit 1."""
    argv, suffix = WRITERS[command]
    run = copy_run(tiny.run, tmp_path / "run")
    here = tmp_path / "outputs"
    here.mkdir()
    for length in (250, 300):
        out = here / ("n" * (length - len(suffix)) + suffix)
        subs = {"RUN": str(run), "SPEC": str(tiny.spec), "OUT": str(out), "DATA": str(tiny.folder / "animal.jsonl")}
        outcome = cli([subs.get(a, a) for a in argv])
        if length == 250:
            assert outcome.code == 0 and not outcome.traceback, outcome.err
            assert out.exists() and [p.name for p in here.iterdir()] == [out.name]  # no temp left beside it
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        else:
            refused(outcome, "is 300 bytes long, and the file system allows at most 255 in one name")
            assert list(here.iterdir()) == []


def test_a_later_writer_finds_the_temps_of_a_long_target(tmp_path: Path) -> None:
    """A temp of a long target is named by a shortened stem; a later writer still recognises and removes it when
    its writer is gone, and puts back a folder set aside under such a name (before: no such name could exist)."""
    from taskgraph.atomic import name_max, temp_stem

    name, other = "n" * 250, "m" * 250
    stem = temp_stem(name, name_max(tmp_path))
    assert stem != name and len(f".{stem}.stage-{HOST}-{2**32}-abcdefgh".encode()) <= 255
    assert temp_stem("short", 255) == "short"  # a short target's temps are named as before
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stale_file = tmp_path / f".{stem}.{HOST}-{dead}-abcdefgh.tmp"
    stale_stage = tmp_path / f".{stem}.stage-{HOST}-{dead}-abcdefgh"
    set_aside = tmp_path / f".{stem}.old-{HOST}-{dead}-abcdefgh"
    others = tmp_path / f".{temp_stem(other, 255)}.{HOST}-{dead}-abcdefgh.tmp"
    stale_file.write_text("half")
    stale_stage.mkdir()
    (set_aside / name).mkdir(parents=True)
    (set_aside / name / "kept").write_text("old")
    others.write_text("another target's")
    assert all(is_temp(p) and is_stale(p) for p in (stale_file, stale_stage, set_aside, others))
    clean_stale(tmp_path, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, others.name])
    assert (tmp_path / name / "kept").read_text() == "old"


# ----------------------------------------------------------------------------- adapters.imports
def _config(**changes: Any) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, **changes}))

    return edit


def _weights(change: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        tensors = safetensors.torch.load((folder / "adapter_model.safetensors").read_bytes())
        (folder / "adapter_model.safetensors").write_bytes(
            safetensors.torch.save({k: change(v) for k, v in tensors.items()})
        )

    return edit


def _nan_first(tensor: torch.Tensor) -> torch.Tensor:
    out = tensor.clone()
    out.view(-1)[0] = float("nan")
    return out


IMPORTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "rank_pattern-int": (_config(rank_pattern=5), "rank_pattern is 5: every module must share r and lora_alpha"),
    "alpha_pattern-list": (_config(alpha_pattern=[{}, {}]), "alpha_pattern is [{}, {}]: every module must share"),
    "lora_alpha-nan": (_config(lora_alpha=float("nan")), "lora_alpha is nan; expected a positive finite number"),
    "lora_alpha-inf": (_config(lora_alpha=float("inf")), "lora_alpha is inf; expected a positive finite number"),
    "fan_in_fan_out-text": (_config(fan_in_fan_out="yes"), "fan_in_fan_out is 'yes'; expected true or false"),
    "config-nested": (
        lambda f: (f / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000),
        "adapter_config.json is nested too deeply",
    ),
    "meta-base-list": (
        lambda f: (f / "taskgraph.json").write_text(json.dumps({"base": [1, 2]})),
        "taskgraph.json: its 'base' ('[1, 2]') is not a JSON object",
    ),
    "meta-nested": (
        lambda f: (f / "taskgraph.json").write_text("[" * 100_000 + "]" * 100_000),
        "taskgraph.json is nested too deeply",
    ),
    "weights-float8": (
        _weights(lambda t: t.to(torch.float8_e4m3fn)),
        "is float8_e4m3fn; LoRA factors are imported from float16, bfloat16, float32, float64 only",
    ),
    "weights-int": (_weights(lambda t: t.to(torch.int32)), "is int32; LoRA factors are imported from"),
    "weights-nan": (_weights(_nan_first), "holds NaN or infinite values; the adapter is broken"),
}


@pytest.mark.parametrize("case", list(IMPORTS))
def test_a_hostile_peft_folder_in_adapters_imports_is_named_by_validate(tmp_path: Path, case: str) -> None:
    """Before: a traceback (TypeError, AttributeError, RecursionError, NotImplementedError) from validate, or a
    non-finite lora_alpha / factor / a text fan_in_fan_out accepted."""
    from taskgraph.data.planted import PlantedConfig, planted_universe
    from tests.model.test_lora_import import peft_folder, spec

    folder, _ = peft_folder(tmp_path / "lora")
    edit, message = IMPORTS[case]
    edit(folder)
    data = spec(imports=[{"path": str(folder), "skill": 0}]).model_dump(mode="json", exclude_none=True)
    universe = planted_universe(PlantedConfig(vocab_size=100))
    data["tasks"] = [
        {**t, "num_labels": universe.num_labels(i), "data": {"source": "planted", "task": i, "vocab_size": 100}}
        for i, t in enumerate(data["tasks"])
    ]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    refused(cli(["validate", str(tmp_path / "spec.yaml")]), f"PEFT folder {str(folder)!r}", message)


# ----------------------------------------------------------------------------- data-parallel timeout
@pytest.mark.parametrize("value", ["inf", "1e300", "-inf", "nan", "604801"])
def test_a_collective_timeout_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Before: inf and 1e300 overflowed ``timedelta`` (OverflowError, exit 1)."""
    from taskgraph.train.distributed import DistributedError, data_parallel_from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("TASKGRAPH_DIST_TIMEOUT", value)
    with pytest.raises(DistributedError, match=r"TASKGRAPH_DIST_TIMEOUT=.*at most 604,800 \(a week\)"):
        data_parallel_from_env(torch.device("cpu"))


# ----------------------------------------------------------------------------- bench options
@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "infer", "--model", "tiny", "--router", "nope"], "argument --router: unknown router 'nope'; choose"),
    ],
    ids=["infer-router"],
)
def test_bench_options_the_bench_cannot_build_are_one_paragraph(tmp_path: Path, argv: list[str], message: str) -> None:
    """Before: the spec's or the planted universe's pydantic report, with its URL, under a traceback (exit 1)."""
    refused(cli([str(tmp_path / "bench") if a == "OUT" else a for a in argv]), message)
    assert not (tmp_path / "bench").exists()


# ----------------------------------------------------------------------------- generative adapt
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--choice", "bad"], "cannot add task 'new': choices: List should have at least 2 items"),
        (["--stop="], "cannot add task 'new': stop.0: String should have at least 1 character"),
        (["--template", "{"], "cannot add task 'new': template: template '{': Single '{'"),
    ],
    ids=["one-choice", "empty-stop", "bad-template"],
)
def test_a_generative_task_the_schema_refuses_is_one_paragraph(
    mixed: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    """Before: ``adapt --objective generate`` printed pydantic's multi-line report with its errors.pydantic.dev URL."""
    data = mixed.parent / "rt.jsonl"
    argv = ["adapt", str(mixed), "--task", "new", "--data", str(data), "--shots", "2", "--mode", "full"]
    err = refused(cli([*argv, "--objective", "generate", *flags, "--out", str(tmp_path / "a")]), message)
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]
    assert not (tmp_path / "a").exists()
