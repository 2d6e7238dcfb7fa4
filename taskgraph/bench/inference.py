"""``taskgraph bench infer``: inference throughput of mixed-task batches against one task at a time.

Requests for many tasks arrive mixed. Three ways to serve ``T × n`` texts (``n`` per task, in a shuffled order):

* **mixed** — the routed model, every batch mixing tasks (:func:`~taskgraph.model.predict.classify_ids` with one task
  per text: what ``predict --task-field`` runs);
* **per task, routed** — the routed model, the texts grouped by task, one task per batch;
* **fold + per task** — each task folded into the base weights (:meth:`TaskGraphModel.merge_task`) and its texts
  run through that plain model, one task after another; the folds are part of the time (a server that keeps T
  merged copies of the base would skip them: **pre-folded**, also timed, at T × the base's memory).

Each configuration runs once per round in a shuffled order after ``warmup`` uncounted rounds; figures are medians,
comparisons the median of per-round paired ratios with a bootstrap 95 % CI (:mod:`taskgraph.bench.stats`), so a busy
machine slows both sides of a ratio alike. Batches are sorted by length and padded within themselves in every
configuration.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from taskgraph.bench.ops import MODELS
from taskgraph.bench.speed import interleaved
from taskgraph.bench.stats import median, ratio_summary

CONFIGS = ("mixed", "per-task", "fold", "prefolded")
LABELS = {
    "mixed": "routed, mixed-task batches",
    "per-task": "routed, one task per batch",
    "fold": "fold each task, then its texts",
    "prefolded": "pre-folded models, one task after another",
}


@dataclass(frozen=True)
class InferSettings:
    """What an inference bench runs (recorded in its JSON).

    Args:
        model: ``tiny`` or ``minilm`` (the MiniLM-L6 architecture from its config: the weights do not change the time).
        router: the routed model's router kind.
        tasks: T; texts: n per task; seq: the longest text (lengths drawn from ``seq/2 .. seq``); batch: texts per pass.
        rounds, warmup: counted and uncounted rounds. threads: torch threads (default: the usable CPUs).
    """

    model: str = "minilm"
    router: str = "poly"
    tasks: int = 8
    texts: int = 64
    seq: int = 64
    batch: int = 64
    rounds: int = 10
    warmup: int = 1
    threads: int | None = None
    seed: int = 0

    def check(self) -> list[str]:
        problems = [] if self.model in ("tiny", "minilm") else [f"model {self.model!r}: choose tiny or minilm"]
        if self.rounds < 2:
            problems.append(f"rounds must be at least 2 (paired ratios), got {self.rounds}")
        if self.seq < 2:
            problems.append(f"seq must be at least 2, got {self.seq}")
        return problems


def build(settings: InferSettings) -> dict[str, Callable[[], None]]:
    """The routed model (trained-looking adapters), the texts, and one step per configuration."""
    from transformers import AutoConfig, AutoModel

    from taskgraph.model import TaskGraphModel
    from taskgraph.model.predict import classify_ids
    from taskgraph.spec.models import Spec

    config = dict(MODELS[settings.model], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(settings.seed)
    base = AutoModel.from_config(AutoConfig.for_model(**config))
    spec = Spec.model_validate(
        {
            "model": {"config": config, "target_modules": ["query", "value"]},
            "adapters": {"rank": 8, "alpha": 16, "skills": 8},
            "router": {"kind": settings.router},
            "tasks": [{"name": f"task{t}", "num_labels": 2 + t % 3} for t in range(settings.tasks)],
        }
    )
    model = TaskGraphModel(spec, base=base).eval()
    gen = torch.Generator().manual_seed(settings.seed + 1)
    with torch.no_grad():
        for _, layer in model.adapted:  # B = 0 would fold to the base weights exactly
            layer.B.normal_(0.0, 0.02, generator=gen)
    vocab = config["vocab_size"]
    count = settings.tasks * settings.texts
    lengths = torch.randint(settings.seq // 2, settings.seq + 1, (count,), generator=gen).tolist()
    ids = [torch.randint(5, vocab, (n,), generator=gen).tolist() for n in lengths]
    tasks = torch.randperm(count, generator=gen).remainder(settings.tasks).tolist()  # shuffled, n per task
    groups = [[i for i, t in enumerate(tasks) if t == task] for task in range(settings.tasks)]
    prefolded = [model.merge_task(t) for t in range(settings.tasks)]

    def merged_logits(merged: Any) -> Callable[[Any, Any, Any], Any]:
        return lambda batch, mask, _task_ids: merged(batch, mask)

    @torch.no_grad()
    def mixed() -> None:
        classify_ids(model, ids, tasks, settings.batch)

    @torch.no_grad()
    def per_task() -> None:
        for task, rows in enumerate(groups):
            classify_ids(model, [ids[i] for i in rows], [task] * len(rows), settings.batch)

    @torch.no_grad()
    def fold() -> None:
        for task, rows in enumerate(groups):
            merged = model.merge_task(task)
            classify_ids(model, [ids[i] for i in rows], [task] * len(rows), settings.batch, merged_logits(merged))

    @torch.no_grad()
    def pre_folded() -> None:
        for task, rows in enumerate(groups):
            classify_ids(
                model, [ids[i] for i in rows], [task] * len(rows), settings.batch, merged_logits(prefolded[task])
            )

    return {"mixed": mixed, "per-task": per_task, "fold": fold, "prefolded": pre_folded}


def run_infer_bench(settings: InferSettings, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every configuration, interleaved; examples/s and paired ratios to the mixed-batch configuration."""
    problems = settings.check()
    if problems:
        from taskgraph.bench.errors import BenchError

        raise BenchError("bench infer: " + "; ".join(problems))
    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads or len(os.sched_getaffinity(0)))
    try:
        steps = build(settings)
        wall, _ = interleaved(steps, settings.rounds, settings.warmup, torch.device("cpu"), settings.seed, progress)
    finally:
        torch.set_num_threads(before)
    examples = settings.tasks * settings.texts
    rows = {}
    for key in CONFIGS:
        summary = ratio_summary(wall[key], wall["mixed"])
        rows[key] = {
            "label": LABELS[key],
            "median_s": median(wall[key]),
            "examples_per_s": examples / median(wall[key]),
            "time_vs_mixed": asdict(summary),
        }
    return {
        "settings": asdict(settings),
        "rows": rows,
        "times_s": wall,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": settings.threads or len(os.sched_getaffinity(0)),
            "load_average": list(os.getloadavg()),
        },
    }


def render_infer(result: dict[str, Any]) -> str:
    """The markdown table of a :func:`run_infer_bench` result: each way of serving the mixed-task texts, its median
    time, examples per second and time relative to the mixed batch."""
    s = result["settings"]
    lines = [
        f"{s['model']} ({s['router']} router), {s['tasks']} tasks × {s['texts']} texts of {s['seq'] // 2}–{s['seq']} "
        f"tokens, batch {s['batch']}, {s['rounds']} rounds",
        "",
        "| inference | median | examples/s | time × mixed [95 % CI] |",
        "|---|---:|---:|---|",
    ]
    for row in result["rows"].values():
        r = row["time_vs_mixed"]
        lines.append(
            f"| {row['label']} | {row['median_s'] * 1e3:,.0f} ms | {row['examples_per_s']:,.0f} | "
            f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}] |"
        )
    return "\n".join(lines)
