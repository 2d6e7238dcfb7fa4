"""``taskgraph bench lm``: generative tasks' speed beside PEFT — a causal-LM training step, and mixed-task generation.

A GPT-2 built from a config (random weights: time depends on the shapes, not the values), LoRA / routed LoRA on
``c_attn`` (rank 8), ``tasks`` generative tasks:

* **training step** — a batch of ``batch`` rows of ``seq`` tokens (half prompt, half target, tasks mixed), loss on the
  targets, backward, AdamW: every router's routed model against PEFT's single LoRA (``get_peft_model``);
* **generation** — ``prompts`` prompts of 16 tokens, task ``i mod T`` each, ``new_tokens`` greedy tokens with the KV
  cache: every router's routed :func:`~taskgraph.model.generation.generate_ids` (one call, each prompt its task's
  routing) against PEFT's mixed-adapter generation (one LoRA per task, ``generate(..., adapter_names=...)``) and PEFT's
  single-LoRA generation.

Every configuration writes exactly ``new_tokens`` tokens (the end token is one past the vocabulary, so no row stops
early; checked before timing). Configurations run once per round in a shuffled order after ``warmup`` uncounted
rounds; a comparison is the median of per-round paired ratios with a bootstrap 95 % CI (:mod:`taskgraph.bench.stats`).
"""

from __future__ import annotations

import copy
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from taskgraph.bench.errors import BenchError
from taskgraph.bench.speed import interleaved
from taskgraph.bench.stats import median, ratio_summary

ROUTER_KINDS = ("shared", "private", "poly", "mhr", "mhr-mu", "graph")
GPT2: dict[str, dict[str, Any]] = {  # model_type gpt2; dropout 0 (a bench compares compute, not regularisation)
    "tiny": {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 100},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "vocab_size": 8192},
}
PROMPT = 16  # tokens per generation prompt
RANK = 8


@dataclass(frozen=True)
class LMSettings:
    """What the bench runs (recorded in its JSON): see the module docstring."""

    model: str = "small"
    tasks: int = 8
    batch: int = 16
    seq: int = 128
    prompts: int = 32
    new_tokens: int = 32
    routers: tuple[str, ...] = ROUTER_KINDS
    rounds: int = 10
    warmup: int = 1
    threads: int | None = None
    seed: int = 0

    def check(self) -> list[str]:
        problems = [] if self.model in GPT2 else [f"model {self.model!r}: choose from {list(GPT2)}"]
        unknown = [r for r in self.routers if r not in ROUTER_KINDS]
        if unknown:
            problems.append(f"routers {unknown}: choose from {list(ROUTER_KINDS)}")
        if self.rounds < 2:
            problems.append(f"rounds must be at least 2 (paired ratios), got {self.rounds}")
        if self.seq < 4 or self.seq % 2:
            problems.append(f"seq must be an even number of at least 4 (half prompt, half target), got {self.seq}")
        return problems

    def config(self) -> dict[str, Any]:
        return {
            "model_type": "gpt2",
            **GPT2[self.model],
            "n_positions": max(self.seq, PROMPT + self.new_tokens),
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "eos_token_id": GPT2[self.model]["vocab_size"],
            "pad_token_id": 0,
        }  # no token ends a row early


def _routed(settings: LMSettings, base: Any, router: str) -> Any:
    from taskgraph.model import TaskGraphModel
    from taskgraph.spec.models import Spec

    spec = Spec.model_validate(
        {
            "model": {
                "config": settings.config(),
                "target_modules": ["c_attn"],
                "pooling": "last",
                "max_length": settings.seq,
            },
            "adapters": {"rank": RANK, "alpha": 2.0 * RANK, "skills": 8},
            "router": {"kind": router},
            "tasks": [
                {"name": f"task{t}", "objective": "generate", "max_new_tokens": settings.new_tokens}
                for t in range(settings.tasks)
            ],
        }
    )
    return TaskGraphModel(spec, base=copy.deepcopy(base))


def _peft(base: Any, adapters: int) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules=["c_attn"], fan_in_fan_out=True)
    model = get_peft_model(copy.deepcopy(base), config, adapter_name="task0")
    for t in range(1, adapters):
        model.add_adapter(f"task{t}", config)
    return model


def _train_step(loss_of: Callable[[], torch.Tensor], params: list[torch.nn.Parameter]) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of().backward()
        optimizer.step()

    return step


def build(settings: LMSettings) -> dict[str, Callable[[], None]]:
    """One step per configuration: ``train/<router>``, ``train/peft-lora``, ``generate/<router>``,
    ``generate/peft-mixed``, ``generate/peft-lora``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from taskgraph.data.lm_inputs import causal_rows
    from taskgraph.model.generation import generate_ids

    torch.manual_seed(settings.seed)
    config = settings.config()
    base = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    gen = torch.Generator().manual_seed(settings.seed + 1)
    vocab, half = config["vocab_size"], settings.seq // 2
    rows = [torch.randint(1, vocab, (2, half), generator=gen).tolist() for _ in range(settings.batch)]
    ids, mask, labels = causal_rows([p for p, _ in rows], [t for _, t in rows], 0)  # [B, S] each
    task_ids = torch.arange(settings.batch) % settings.tasks  # [B]
    prompts = torch.randint(1, vocab, (settings.prompts, PROMPT), generator=gen)  # [P, 16]
    prompt_tasks = torch.arange(settings.prompts) % settings.tasks  # [P]
    steps: dict[str, Callable[[], None]] = {}
    for router in settings.routers:
        model = _routed(settings, base, router)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        steps[f"train/{router}"] = _train_step(lambda m=model: m(ids, mask, task_ids, targets=labels).loss, params)
        routed = _routed(settings, base, router).eval()
        steps[f"generate/{router}"] = torch.no_grad()(
            lambda m=routed: _exact(
                generate_ids(m, prompt_tasks, prompts.tolist(), [settings.new_tokens] * settings.prompts),
                settings.new_tokens,
            )
        )
    single = _peft(base, 1).train()
    steps["train/peft-lora"] = _train_step(
        lambda: single(input_ids=ids, attention_mask=mask, labels=labels).loss,
        [p for p in single.parameters() if p.requires_grad],
    )
    options = {
        "max_new_tokens": settings.new_tokens,
        "min_new_tokens": settings.new_tokens,
        "do_sample": False,
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": 0,
        "use_cache": True,
    }
    attention = torch.ones_like(prompts)  # [P, 16]
    mixed, lora = _peft(base, settings.tasks).eval(), _peft(base, 1).eval()
    names = [f"task{t}" for t in prompt_tasks.tolist()]
    steps["generate/peft-mixed"] = torch.no_grad()(
        lambda: _exact_out(
            mixed.generate(input_ids=prompts, attention_mask=attention, adapter_names=names, **options), settings
        )
    )
    steps["generate/peft-lora"] = torch.no_grad()(
        lambda: _exact_out(lora.generate(input_ids=prompts, attention_mask=attention, **options), settings)
    )
    for key in [k for k in steps if k.startswith("generate/")]:
        steps[key]()  # every configuration writes new_tokens tokens per prompt, or the bench stops here
    return steps


def _exact(rows: list[list[int]], count: int) -> None:
    if any(len(r) != count for r in rows):
        raise BenchError(f"bench lm: a routed row wrote {min(map(len, rows))} tokens, not {count}")


def _exact_out(out: torch.Tensor, settings: LMSettings) -> None:
    if out.shape[1] != PROMPT + settings.new_tokens:
        raise BenchError(f"bench lm: PEFT wrote {out.shape[1] - PROMPT} tokens, not {settings.new_tokens}")


def run_lm_bench(settings: LMSettings, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every configuration, interleaved; the paired ratios (see the module docstring)."""
    problems = settings.check()
    if problems:
        raise BenchError("bench lm: " + "; ".join(problems))
    before = torch.get_num_threads()
    threads = settings.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    try:
        wall, _ = interleaved(
            build(settings), settings.rounds, settings.warmup, torch.device("cpu"), settings.seed, progress
        )
    finally:
        torch.set_num_threads(before)
    train = {r: asdict(ratio_summary(wall[f"train/{r}"], wall["train/peft-lora"])) for r in settings.routers}
    generate = {
        r: {
            "vs_peft_lora": asdict(ratio_summary(wall[f"generate/{r}"], wall["generate/peft-lora"])),
            "vs_peft_mixed": asdict(ratio_summary(wall[f"generate/{r}"], wall["generate/peft-mixed"])),
        }
        for r in settings.routers
    }
    return {
        "bench": "lm",
        "settings": asdict(settings),
        "median_s": {k: median(v) for k, v in wall.items()},
        "train": train,
        "generate": generate,
        "times_s": wall,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": threads,
            "load_average": list(os.getloadavg()),
        },
    }


def render_lm(result: dict[str, Any]) -> str:
    """Two markdown tables: training step vs PEFT LoRA, generation vs PEFT single and mixed LoRA."""
    s, med = result["settings"], result["median_s"]

    def ci(r: dict[str, Any]) -> str:
        return f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"

    lines = [
        f"GPT-2 {s['model']} from a config, {s['tasks']} tasks, {s['rounds']} rounds",
        "",
        f"training step, batch {s['batch']} × {s['seq']} (tasks mixed, loss on the targets)",
        "",
        "| router | median | × PEFT LoRA [95 % CI] |",
        "|---|---:|---|",
        f"| PEFT LoRA | {med['train/peft-lora'] * 1e3:,.1f} ms | 1 |",
    ]
    lines += [f"| {r} | {med[f'train/{r}'] * 1e3:,.1f} ms | {ci(result['train'][r])} |" for r in s["routers"]]
    lines += [
        "",
        (
            f"generation, {s['prompts']} prompts of {PROMPT} tokens, {s['new_tokens']} new tokens (greedy, "
            "tasks mixed in one call)"
        ),
        "",
        "| configuration | median | tokens/s | × PEFT LoRA [95 % CI] | × PEFT mixed [95 % CI] |",
        "|---|---:|---:|---|---|",
    ]
    tokens = s["prompts"] * s["new_tokens"]
    for key, label in (
        ("generate/peft-lora", "PEFT LoRA (one adapter)"),
        ("generate/peft-mixed", "PEFT mixed (adapter_names)"),
    ):
        lines.append(f"| {label} | {med[key] * 1e3:,.0f} ms | {tokens / med[key]:,.0f} | | |")
    for r in s["routers"]:
        g = result["generate"][r]
        lines.append(
            f"| {r} | {med[f'generate/{r}'] * 1e3:,.0f} ms | {tokens / med[f'generate/{r}']:,.0f} | "
            f"{ci(g['vs_peft_lora'])} | {ci(g['vs_peft_mixed'])} |"
        )
    return "\n".join(lines)
