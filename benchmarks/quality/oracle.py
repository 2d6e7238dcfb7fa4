"""The oracle-relearn cells of ``python -m benchmarks quality``: the allocation ceiling, measured in every run.

One cell per seed, under ``OUT/<suite>/oracle/seed<k>/cell.json``: :func:`taskgraph.eval.oracle.oracle_relearn` on
the suite's ``poly`` cell spec at the suite's rate in :data:`ORACLE_LR` — adapters trained ``budget.steps`` steps under oracle routing
(the planted skills), then frozen while routing is re-learned from scratch for another ``budget.steps`` steps. Its
allocation precision (mean and per (layer, head)) is the figure a router's allocation is read against: with the
right adapters, how much of the planted allocation the task loss determines at all. A cell is done when its
``cell.json`` exists; one written for another spec (budget, universe) is an error, as for a training cell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.quality.pool import CellPool
from benchmarks.quality.suites import QualityError, Suite
from benchmarks.quality.summary import number, per_layer_head, spread
from taskgraph.atomic import write_text
from taskgraph.errors import TaskgraphError
from taskgraph.sweep import read_record

ORACLE_LR: dict[str, float] = {  # adapters + heads under oracle routing: poly's chosen rate on each suite's grid
    "planted": 3e-2,
    "planted-gen": 1e-2,  # 3e-2 there: exact match 0.42 against 0.74 at 1e-2 (poly, seed 0's cells)
}
ORACLE_SUITES = tuple(ORACLE_LR)  # the planted universes
RECORD = "cell.json"


def oracle_cell_dir(out: Path, suite: str, seed: int) -> Path:
    return Path(out) / suite / "oracle" / f"seed{seed}"


def run_oracle_cells(
    suite: Suite,
    out: Path,
    seeds: int,
    device: str,
    add: Callable[..., None],
    pool: CellPool,
) -> list[dict[str, Any]]:
    """Every seed's oracle-relearn cell of ``suite`` (run, or read back when done) in ``pool``
    (:class:`~benchmarks.quality.pool.CellPool`, which also carries the progress ``say``); their records.

    ``add(record, ran, *time_keys)`` counts each cell (:meth:`benchmarks.quality.run.Part.add`).
    """
    calls = [(suite, oracle_cell_dir(out, suite.name, seed), seed, device) for seed in range(seeds)]
    records = []
    for record, ran in pool.run(run_oracle_cell, calls):
        add(record, ran, "seconds")
        records.append(record)
    return records


def run_oracle_cell(
    suite: Suite, path: Path, seed: int, device: str, say: Callable[[str], None]
) -> tuple[dict[str, Any], bool]:
    """One seed's oracle-relearn cell; ``(record, ran)``."""
    from taskgraph.eval import oracle_relearn, planted_truth
    from taskgraph.spec import Spec
    from taskgraph.train import spec_hash

    label = f"[{suite.name}] oracle-relearn seed {seed}"
    lr = ORACLE_LR[suite.name]
    spec = Spec.model_validate(suite.cell_spec("poly", lr, seed))
    digest, steps = spec_hash(spec), suite.budget.steps
    held = read_record(path / RECORD)
    if held is not None:
        if held.get("spec_hash") != digest:
            raise QualityError(
                f"{label}: {str(path)!r} holds an oracle cell of another spec (budget or universe); "
                "give a new --out, or delete that folder to run it again (nothing was changed)"
            )
        return held, False
    record: dict[str, Any] = {
        "seed": seed,
        "lr": lr,
        "train_steps": steps,
        "relearn_steps": steps,
        "spec_hash": digest,
        "error": None,
    }
    say(f"{label}: {steps} steps under oracle routing, then {steps} re-learning routing")
    start = time.perf_counter()
    try:
        truth = planted_truth(spec)
        if truth is None or truth.incidence is None:
            raise QualityError(f"{label}: the suite's tasks are not one planted universe")
        result = oracle_relearn(
            spec,
            truth.incidence,
            train_steps=steps,
            relearn_steps=steps,
            seed=seed,
            base_dir=suite.base_dir,
            device=device,
        )
        record.update(result.as_dict())
    except TaskgraphError as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        say(f"{label}: failed: {record['error']}")
    record["seconds"] = time.perf_counter() - start
    path.mkdir(parents=True, exist_ok=True)
    write_text(path / RECORD, json.dumps(record, indent=2) + "\n")
    if record["error"] is None:
        say(f"{label}: allocation precision {record['precision']:.3f} ({record['seconds']:.0f} s)")
    return record, True


def oracle_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Mean ± std over seeds of the oracle cells' figures; None when there are none."""
    if not records:
        return None
    ok = [r for r in records if not r.get("error")]
    return {
        "seeds": [r.get("seed") for r in ok],
        "errors": {r.get("seed"): r["error"] for r in records if r.get("error")},
        "lr": records[0].get("lr"),
        "train_steps": records[0].get("train_steps"),
        "relearn_steps": records[0].get("relearn_steps"),
        "layers": next((r.get("layers") for r in ok if r.get("layers")), []),
        **{
            key: spread(number(r.get(key)) for r in ok)
            for key in ("precision", "random", "oracle_val", "relearn_val", "relearn_test", "relation_auroc")
        },
        "per_layer_head": per_layer_head([r.get("per_layer_head") for r in ok]),
    }
