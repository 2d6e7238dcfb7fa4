"""The speed bench's rows for a causal LM on a quantized base: a Llama built from a config, nf4 (QLoRA), and the
gradient-checkpointed twin of every row; the 1 B shape refused on a CPU.

The figures at the 1 B shape are a benchmark (``.ci/gpu-check``); here the tiny Llama (2 layers × 256, every
projection a multiple of nf4's 64 × 256 values — the tiny BERT's 32-wide layers are not) runs every row.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from taskgraph.bench import BenchError, SpeedSettings, speed_shape
from taskgraph.bench.speed import LLAMA_TARGETS, bench_rows, memory_child
from taskgraph.cli import main

ROWS = {  # key: (label, checkpointed, unquantized base)
    "peft-lora/d0": ("PEFT LoRA on the nf4 base (QLoRA)", False, False),
    "peft-lora-gc/d0": ("PEFT LoRA on the nf4 base (QLoRA) + gradient checkpointing", True, False),
    "peft-lora-full/d0": ("PEFT LoRA, unquantized base", False, True),
    "peft-lora-full-gc/d0": ("PEFT LoRA, unquantized base + gradient checkpointing", True, True),
    "floor/d0": ("frozen nf4 base, no adapter (floor)", False, False),
    "floor-gc/d0": ("frozen nf4 base, no adapter (floor) + gradient checkpointing", True, False),
    "taskgraph-shared/d0": ("taskgraph shared", False, False),
    "taskgraph-shared-gc/d0": ("taskgraph shared + gradient checkpointing", True, False),
    "taskgraph-poly/d0": ("taskgraph poly", False, False),
    "taskgraph-poly-gc/d0": ("taskgraph poly + gradient checkpointing", True, False),
    "taskgraph-graph/d0": ("taskgraph graph", False, False),
    "taskgraph-graph-gc/d0": ("taskgraph graph + gradient checkpointing", True, False),
}
ARGS = ["--quantize", "nf4", "--gradient-checkpointing", "--routers", "shared", "poly", "graph"]
TINY = ["--model", "tiny-llama", "--batch", "4", "--seq", "32", "--tasks", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("llm") / "speed.json"
    argv = ["bench", "speed", *TINY, *ARGS, "--rounds", "2", "--warmup", "0", "--no-memory", "--json", str(out)]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_the_table_holds_every_row_with_and_without_checkpointing(record: dict) -> None:
    rows = record["rows"]
    assert list(rows) == list(ROWS)
    for key, (label, checkpointing, full_precision) in ROWS.items():
        row = rows[key]
        assert (row["label"], row["checkpointing"], row["full_precision"]) == (label, checkpointing, full_precision)
        assert row["reference"] == ("peft-lora-gc/d0" if checkpointing else "peft-lora/d0")
        assert len(row["times_s"]) == 2 and all(t > 0 for t in row["times_s"])
    assert record["settings"]["shape"]["targets"] == list(LLAMA_TARGETS)
    assert record["environment"]["model_dropout"] == 0.0  # a Llama has no hidden dropout: one table


def test_checkpointing_halves_what_the_forward_keeps_for_the_backward() -> None:
    settings = SpeedSettings(
        model="tiny-llama", quantize="nf4", threads=1, memory_steps=1, tasks=3, shape=speed_shape("tiny-llama", 4, 64)
    )
    rows = {r.key: r for r in bench_rows(replace(settings, gradient_checkpointing=True), 0.0)}
    plain, ckpt = (memory_child(settings, rows[k])["activation_mb"] for k in ("peft-lora/d0", "peft-lora-gc/d0"))
    assert 0 < ckpt < 0.5 * plain


def test_the_1b_shape_is_refused_on_a_cpu_unless_allowed() -> None:
    settings = SpeedSettings(model="llama-1b", quantize="nf4", shape=speed_shape("llama-1b", 8, 512))
    with pytest.raises(BenchError, match=r"model 'llama-1b' has about 1 B parameters.*--device cuda.*--allow-large"):
        settings.check()
    replace(settings, allow_large=True).check()
    rows = bench_rows(replace(settings, gradient_checkpointing=True, routers=("shared", "poly", "graph")), 0.0)
    assert [r.key for r in rows] == list(ROWS)
    with pytest.raises(BenchError, match=r"routers \['lora'\]: name one or more of \["):
        replace(settings, allow_large=True, routers=("lora",)).check()


def test_llama_rows_target_every_projection() -> None:
    assert speed_shape("llama-1b", 8, 512).targets == LLAMA_TARGETS
    assert speed_shape("minilm", 8, 512).targets == ("query", "value")
