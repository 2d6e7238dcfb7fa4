"""``taskgraph bench speed --ops``: the aten operations of one training step, per router, beside PEFT.

On a GPU a MiniLM-sized step is launch-bound (README, the H100 table): what it costs is the number of kernels it
launches, not its arithmetic. This bench counts, with a :class:`~torch.utils._python_dispatch.TorchDispatchMode`,
every aten operation the dispatcher runs in one training step — forward, pooling, per-task head, cross-entropy
and backward (the rows of :mod:`taskgraph.bench.rows`; the optimizer step is left out: it is the same foreach
AdamW everywhere) — on the CPU, so anyone can check it without a GPU. ``kernels`` leaves out the operations that
only make a new view of a tensor's memory (``view``, ``permute``, ``select``, ``_unsafe_view``, ...), which launch
nothing. Counts are deterministic (no timing): a busy machine does not change them, and they do not depend on the
batch or sequence size (only on which operations run), so the batch is 32 × 16 tokens to keep the bench quick.

Each model is counted at several ``(T, U)``: T tasks, U distinct tasks in the batch of 32. Every row has one
linear head per task (:class:`~taskgraph.model.heads.TaskHeads`), PEFT's rows too, so every row grows by the
same few operations per distinct task; what taskgraph's routing adds is the **excess** over PEFT LoRA at the
same ``(T, U)``: per router, the bench reports its worst ratio to PEFT LoRA's count and whether that excess stays flat
as T and U grow (the graph router's within each of its two modes: all task pairs while T ≤ 64, sparse candidates
beyond). A single-task batch (U = 1) can be a few operations cheaper than U ≥ 2: its per-task factors are already
contiguous where a mixed batch's need a copy (MHR's heads) or a reduction.
"""

from __future__ import annotations

import contextlib
import copy
import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from taskgraph.bench.rows import ROUTER_KINDS, Batch, Env, Row, Shape, TrainingStep, build_step

METADATA_ONLY = {"_unsafe_view"}  # not flagged is_view by aten, yet only a view of its input's memory
MODELS: dict[str, dict[str, Any]] = {  # built from configs: the counts do not depend on the weights
    "tiny": dict(
        model_type="bert",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
    ),
    "minilm": dict(
        model_type="bert",
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,  # MiniLM-L6
        intermediate_size=1536,
        vocab_size=30522,
    ),
    "encoder-768": dict(
        model_type="bert",
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        vocab_size=30522,
    ),
}
TITLES = {
    "tiny": "tiny BERT (2 layers, 4 adapted modules)",
    "minilm": "MiniLM-L6 shape (6 layers, 12 adapted modules)",
    "encoder-768": "encoder 12 layers × 768 (24 adapted modules)",
}
DENSE_LIMIT = 64  # the graph router's default relations.dense_limit (router.dense_limit)


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched inside the ``with`` block, by name (``aten.mm``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.views = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        self.ops[str(func.overloadpacket)] += 1
        if func.is_view or func.overloadpacket.__name__ in METADATA_ONLY:
            self.views += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def kernels(self) -> int:
        return self.total - self.views


@dataclass(frozen=True)
class OpsSettings:
    """What an ops bench counts.

    Args:
        models: keys of :data:`MODELS`.
        cases: ``(T, U)`` pairs: T tasks, U distinct tasks among the batch's examples.
        batch, seq: the batch (B ≥ the largest U).
        mhr_heads: H of the mhr row (and PEFT Poly's ``n_splits`` row).
        shape: rank, alpha, K, targets.
    """

    models: tuple[str, ...] = ("minilm", "encoder-768")
    cases: tuple[tuple[int, int], ...] = ((8, 1), (8, 8), (1000, 8), (1000, 32))
    batch: int = 32
    seq: int = 16
    mhr_heads: int = 8
    shape: Shape = field(default_factory=lambda: Shape(batch=32, seq=16))
    routers: tuple[str, ...] | None = None  # the taskgraph rows (default: every registered router)
    peft_poly: bool = True  # the PEFT Poly rows

    def check(self) -> list[str]:
        problems = [f"unknown model {m!r}; choose from {sorted(MODELS)}" for m in self.models if m not in MODELS]
        problems += [
            f"case T={t}, U={u}: need 1 ≤ U ≤ T and U ≤ batch {self.batch}"
            for t, u in self.cases
            if not 1 <= u <= min(t, self.batch)
        ]
        return problems


def rows_for(settings: OpsSettings, tasks: int) -> list[Row]:
    """PEFT LoRA (the reference), PEFT Poly (1 and H splits), and every registered router."""
    out = [Row("peft-lora", "PEFT LoRA", "peft-lora", 0.0, tasks=tasks)]
    if settings.peft_poly:
        out += [
            Row("peft-poly", "PEFT Poly", "peft-poly", 0.0, tasks=tasks),
            Row(
                "peft-poly-h",
                f"PEFT Poly n_splits = {settings.mhr_heads}",
                "peft-poly",
                0.0,
                heads=settings.mhr_heads,
                tasks=tasks,
            ),
        ]
    for kind in settings.routers or ROUTER_KINDS:
        heads = settings.mhr_heads if kind == "mhr" else 1
        label = f"taskgraph {kind}" + (f" (H = {heads})" if kind == "mhr" else "")
        out.append(Row(f"taskgraph-{kind}", label, "taskgraph", 0.0, router=kind, heads=heads, tasks=tasks))
    return out


def batch_for(settings: OpsSettings, vocab: int, tasks: int, distinct: int) -> Batch:
    """A seeded batch whose examples cycle through ``distinct`` tasks spread over ``0 .. tasks-1``."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(min(1000, vocab // 2), vocab, (settings.batch, settings.seq), generator=gen)  # [B, S]
    task_ids = (torch.arange(settings.batch) % distinct) * (tasks // distinct)  # [B], U distinct ids
    labels = torch.randint(0, settings.shape.labels, (settings.batch,), generator=gen)  # [B]
    return Batch.on(ids, torch.ones_like(ids), task_ids, labels, torch.device("cpu"))


def count_step(step: TrainingStep) -> OpCounter:
    """The operations of one forward + backward of ``step`` (after one uncounted, warm-up, step)."""
    for counted in (False, True):
        counter = OpCounter()
        with counter if counted else contextlib.nullcontext():
            loss = step.loss()
            loss.backward()
        step.optimizer.zero_grad(set_to_none=True)
    return counter


def run_ops_bench(settings: OpsSettings, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every model × case × row, counted; the result JSON-ready, with each router's excess over PEFT LoRA."""
    from transformers import AutoConfig, AutoModel

    problems = settings.check()
    if problems:
        from taskgraph.bench.errors import BenchError

        raise BenchError("bench speed --ops: " + "; ".join(problems))
    result: dict[str, Any] = {
        "bench": "ops",
        "settings": _settings_record(settings),
        "models": {},
        "environment": {"torch": torch.__version__, "python": platform.python_version()},
    }
    for name in settings.models:
        config = dict(MODELS[name], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        torch.manual_seed(0)
        template = AutoModel.from_config(AutoConfig.for_model(**config)).eval()
        counts: dict[str, list[dict[str, int]]] = {}
        for tasks, distinct in settings.cases:
            batch = batch_for(settings, config["vocab_size"], tasks, distinct)
            env = Env(batch, settings.shape, torch.device("cpu"), {"config": config})
            for row in rows_for(settings, tasks):
                progress(f"ops: {name} T={tasks} U={distinct} {row.label}")
                torch.manual_seed(0)
                step = build_step(row, copy.deepcopy(template), env)
                assert isinstance(step, TrainingStep)
                counter = count_step(step)
                counts.setdefault(row.label, []).append({"ops": counter.total, "kernels": counter.kernels})
        result["models"][name] = {"title": TITLES[name], "cases": [list(c) for c in settings.cases], "rows": counts}
    result["excess"] = excess_over_peft(result)
    return result


def excess_over_peft(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model and taskgraph row: the worst ratio of its count to PEFT LoRA's, its excess over PEFT LoRA per case,
    and whether that excess is flat in T and U (its spread over the cases with U ≥ 2 is 0)."""
    out = []
    for name, model in result["models"].items():
        rows, cases = model["rows"], model["cases"]
        reference = [c["ops"] for c in rows["PEFT LoRA"]]
        for label, counts in rows.items():
            if not label.startswith("taskgraph"):
                continue
            graph = label == "taskgraph graph"
            ratio = max(c["ops"] / r for c, r in zip(counts, reference))
            excess = [c["ops"] - r for c, r in zip(counts, reference)]
            # a single-task batch (U = 1) may need a few operations less (contiguous layouts need no copy): the
            # growth that matters is with T and with U >= 2; the graph router has one mode per side of DENSE_LIMIT
            groups = [
                [e for e, (t, u) in zip(excess, cases) if u >= 2 and (not graph or (t <= DENSE_LIMIT) == dense)]
                for dense in (True, False)
            ]
            spread = max((max(g) - min(g) for g in groups if g), default=0)
            out.append(
                {
                    "model": name,
                    "row": label,
                    "worst_ratio": ratio,
                    "excess": excess,
                    "excess_spread": spread,
                    "flat": spread == 0,
                }
            )
    return out


def render_ops(result: dict[str, Any]) -> str:
    """Markdown: per model, ops (× PEFT LoRA) and kernels per row and case, then each router's excess."""
    parts = []
    for model in result["models"].values():
        cases, rows = model["cases"], model["rows"]
        reference = rows["PEFT LoRA"]
        head = " | ".join(f"T = {t:,}, U = {u}" for t, u in cases)
        lines = [
            f"#### {model['title']}",
            "",
            f"| training step: aten ops (× PEFT LoRA) / kernels | {head} |",
            "|---|" + "---:|" * len(cases),
        ]
        for label, counts in rows.items():
            cells = [
                f"{c['ops']:,} (× {c['ops'] / r['ops']:.3f}) / {c['kernels']:,}" for c, r in zip(counts, reference)
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    summary = [
        "| model | row | worst × PEFT LoRA | excess over PEFT LoRA per case | flat in T and U |",
        "|---|---|---:|---|---|",
    ]
    for t in result["excess"]:
        excess = ", ".join(f"{e:+,}" for e in t["excess"])
        summary.append(
            f"| {t['model']} | {t['row']} | {t['worst_ratio']:.3f} | {excess} | {'yes' if t['flat'] else 'no'} |"
        )
    parts.append("\n".join(summary))
    return "\n\n".join(parts)


def _settings_record(settings: OpsSettings) -> dict[str, Any]:
    record = asdict(settings)
    record["cases"] = [list(c) for c in settings.cases]
    return record
