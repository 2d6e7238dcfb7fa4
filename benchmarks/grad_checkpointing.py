"""What gradient checkpointing saves on a routed causal LM: activation memory and step time at sequence length 512.

    python -m benchmarks.grad_checkpointing                         # CPU, about a minute on two busy cores
    python -m benchmarks.grad_checkpointing --device cuda           # the same rows on a GPU (CUDA's allocator stats)
    python -m benchmarks.grad_checkpointing --families llama --routers poly graph --batch 8
    python -m benchmarks.grad_checkpointing --json benchmarks/results/grad-checkpointing-cpu.json   # the docs' record

For every (family, router): one training step's forward and backward (a mixed batch of two generative tasks, the
loss on each row's last 32 tokens), with and without ``training.gradient_checkpointing``, the model built the same
way from the same seed. Figures, in MiB, of the memory allocated during the step (the weights, allocated before,
are not in them):

- ``held``: allocated by the forward and still alive when it ends, i.e. what is kept for the backward (the
  activations; checkpointing keeps each block's input only);
- ``peak``: the step's highest point, forward and backward (a checkpointed block's recomputation included);
- ``time``: the median wall time of ``--rounds`` steps.

On CPU the allocations are read from the PyTorch profiler's memory events (``profile_memory=True``); on CUDA from
``torch.cuda.max_memory_allocated`` / ``memory_allocated``. The script also checks that both runs give the same
gradients (max |Δ| printed). Random-init models built from configs; nothing is downloaded. ``--json OUT`` writes
the figures as a record (``benchmarks/results/grad-checkpointing-cpu.json`` is rendered into ``docs/benchmarks.md``
by ``python -m benchmarks.render``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from taskgraph.bench import device_name
from taskgraph.model import TaskGraphModel, causal_rows
from taskgraph.spec import Spec

MiB = 2**20
FAMILIES: dict[str, tuple[dict[str, Any], list[str]]] = {  # small Llama- and GPT-2-shaped configs and their targets
    "llama": (
        dict(
            model_type="llama",
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=4,
            vocab_size=2048,
            max_position_embeddings=1024,
        ),
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ),
    "gpt2": (
        dict(
            model_type="gpt2",
            n_embd=256,
            n_layer=4,
            n_head=8,
            vocab_size=2048,
            n_positions=1024,
            bos_token_id=0,
            eos_token_id=1,
        ),
        ["c_attn", "c_proj", "c_fc"],
    ),
}
TARGET_TOKENS = 32  # each row's loss is on its last 32 tokens


@dataclass
class Row:
    family: str
    router: str
    checkpointing: bool
    held: float  # MiB
    peak: float  # MiB
    seconds: float
    grads: dict[str, torch.Tensor]


def build(family: str, router: str, checkpointing: bool, seq: int, device: str) -> TaskGraphModel:
    config, targets = FAMILIES[family]
    spec = Spec.model_validate(
        {
            "model": {"config": dict(config), "target_modules": targets, "pooling": "last", "max_length": seq},
            "adapters": {"rank": 8, "alpha": 16, "skills": 4},
            "router": {"kind": router},
            "tasks": [{"name": f"g{i}", "objective": "generate", "max_new_tokens": TARGET_TOKENS} for i in range(2)],
            "training": {"gradient_checkpointing": checkpointing},
        }
    )
    torch.manual_seed(0)
    return TaskGraphModel(spec).to(device).train()


def batch(batch_size: int, seq: int, device: str) -> dict[str, torch.Tensor]:
    """``batch_size`` rows of ``seq`` tokens, the last :data:`TARGET_TOKENS` of each its target; tasks alternate."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 2048, (batch_size, seq), generator=gen).tolist()
    cut = seq - TARGET_TOKENS
    ids, mask, targets = causal_rows([row[:cut] for row in tokens], [row[cut:] for row in tokens], 0)
    tasks = torch.arange(batch_size) % 2
    return {"input_ids": ids, "attention_mask": mask, "task_ids": tasks, "targets": targets}


def step(model: TaskGraphModel, inputs: dict[str, torch.Tensor]) -> None:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    model(**inputs).loss.backward()


def cpu_memory(model: TaskGraphModel, inputs: dict[str, torch.Tensor]) -> tuple[float, float]:
    """``(held, peak)`` MiB of one step, from the profiler's memory events (allocations > 0, frees < 0)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        with record_function("forward"):
            loss = model(**inputs).loss
        loss.backward()
        del loss
    events = prof.profiler.kineto_results.events()
    forward_end = next(e.end_ns() for e in events if e.name() == "forward")
    total = held = peak = 0
    for e in sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns()):
        total += e.nbytes()
        peak = max(peak, total)
        if e.start_ns() <= forward_end:
            held = total
    return held / MiB, peak / MiB


def cuda_memory(model: TaskGraphModel, inputs: dict[str, torch.Tensor]) -> tuple[float, float]:
    """``(held, peak)`` MiB of one step from CUDA's allocator statistics."""
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(1)
    loss = model(**inputs).loss
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated() - base
    loss.backward()
    torch.cuda.synchronize()
    return held / MiB, (torch.cuda.max_memory_allocated() - base) / MiB


def measure(family: str, router: str, checkpointing: bool, args: argparse.Namespace) -> Row:
    model = build(family, router, checkpointing, args.seq, args.device)
    inputs = {k: v.to(args.device) for k, v in batch(args.batch, args.seq, args.device).items()}
    step(model, inputs)  # warm-up: lazy initialisation, allocator caches
    held, peak = (cuda_memory if args.device == "cuda" else cpu_memory)(model, inputs)
    grads = {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters() if p.grad is not None}
    seconds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        step(model, inputs)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return Row(family, router, checkpointing, held, peak, statistics.median(seconds), grads)


def record_of(
    args: argparse.Namespace, command: str, device_name: str, pairs: list[tuple[Row, Row, float]]
) -> dict[str, Any]:
    """The figures as a JSON-ready record: the command, settings, environment and one entry per (family, router)."""
    import transformers

    def figures(row: Row) -> dict[str, float]:
        return {"held_mib": row.held, "peak_mib": row.peak, "step_s": row.seconds}

    return {
        "bench": "grad-checkpointing",
        "command": command,
        "settings": {"seq": args.seq, "batch": args.batch, "rounds": args.rounds, "device": args.device},
        "environment": {
            "device_name": device_name,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "date": datetime.date.today().isoformat(),
        "rows": [
            {
                "family": plain.family,
                "router": plain.router,
                "off": figures(plain),
                "on": figures(ckpt),
                "held_ratio": ckpt.held / plain.held,
                "peak_ratio": ckpt.peak / plain.peak,
                "time_ratio": ckpt.seconds / plain.seconds,
                "max_grad_diff": diff,
            }
            for plain, ckpt, diff in pairs
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--routers", nargs="+", default=["poly"])
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", metavar="OUT", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.grad_checkpointing", *(argv if argv is not None else sys.argv[1:])])
    name = device_name(args.device) + ("" if args.device == "cuda" else f", {torch.get_num_threads()} threads")
    print(f"gradient checkpointing, seq {args.seq}, batch {args.batch}, fp32, {name}")
    header = f"{'family':7} {'router':7} {'ckpt':5} {'held MiB':>9} {'peak MiB':>9} {'step s':>7}"
    print(header + f"  {'held ratio':>10} {'peak ratio':>10} {'time ratio':>10} {'max |Δgrad|':>11}")
    pairs: list[tuple[Row, Row, float]] = []
    for family in args.families:
        for router in args.routers:
            plain, ckpt = (measure(family, router, c, args) for c in (False, True))
            diff = max(float((ckpt.grads[n] - g).abs().max()) for n, g in plain.grads.items())
            pairs.append((plain, ckpt, diff))
            for row in (plain, ckpt):
                line = f"{row.family:7} {row.router:7} {'on' if row.checkpointing else 'off':5} "
                print(line + f"{row.held:9.1f} {row.peak:9.1f} {row.seconds:7.3f}", end="")
                if row is ckpt:
                    ratios = (ckpt.held / plain.held, ckpt.peak / plain.peak, ckpt.seconds / plain.seconds)
                    print("  " + " ".join(f"{r:10.3f}" for r in ratios) + f" {diff:11.2e}", end="")
                print()
    if args.json is not None:
        args.json.write_text(json.dumps(record_of(args, command, name, pairs), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
