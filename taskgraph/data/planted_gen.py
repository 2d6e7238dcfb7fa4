"""The planted generative universe: text-to-text tasks whose targets are functions of known latent skills.

The inputs are the planted benchmark's (:mod:`taskgraph.data.planted`: every skill writes one of its tokens
at a random position, in the first or the second half of the sequence). Task ``t``'s **target** is the
tokens of *its* skills ``S_t`` that lie in the first half, in the order they appear::

    input   f f s3 f s1 f f f | f s5 f s2 f f f f          (s_k: a token of skill k; f: filler)
    task {1, 2, 3}  ->  s3 s1 <end>       task {2, 5}  ->  <end>       task {1, 5}  ->  s1 <end>

So exact match needs the task's skills (which tokens to copy) and their positions (first half, in order);
its length is the classification label of the planted benchmark (0 .. |S_t| tokens, balanced). Allocation
precision and relation recovery keep their ground truth (:attr:`PlantedUniverse.incidence`). A shared adapter
cannot tell the tasks apart — a generative task has no head, and the input does not name the task — so
it underfits where per-task adapters learn (a test shows it).

Token ids: the universe's ``1 .. vocab_size - 1``, padding 0, and the end token ``vocab_size`` (one past the
universe's vocabulary: :func:`planted_gen_spec` gives the model ``vocab_size + 1`` tokens and
``eos_token_id = vocab_size``). A generative task without choices has one label (0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskgraph.data.base import Source
from taskgraph.data.examples import SPLITS, Examples
from taskgraph.data.planted import PlantedConfig, PlantedParams, planted_universe
from taskgraph.registry import SOURCES


def planted_targets(ids: np.ndarray, members: np.ndarray, skill_tokens: np.ndarray) -> list[list[int]]:
    """Each row's target: the tokens of the skills ``members`` in the first half of ``ids [n, L]``, by position."""
    half = ids.shape[1] // 2
    own = np.isin(ids[:, :half], skill_tokens[members].reshape(-1))  # [n, L/2]
    return [row[mask].tolist() for row, mask in zip(ids[:, :half], own)]


@SOURCES.register("planted-gen", params=PlantedParams)
class PlantedGenSource(Source):
    """One generative task of a planted universe (see the module docstring; parameters as ``planted``)."""

    kind = "planted-gen"
    params: PlantedParams

    def _read(self) -> dict[str, tuple[Examples, str]]:
        universe, t = planted_universe(self.params.universe_config()), self.params.task
        members = np.flatnonzero(universe.incidence[t])
        c = universe.config
        origin = f"planted-gen task {t}: skills {members.tolist()}, examples_per_task {c.examples_per_task}"
        out: dict[str, tuple[Examples, str]] = {}
        for split in SPLITS:
            ids, _, _ = universe.examples(t, split)  # [n, L]
            targets = planted_targets(ids, members, universe.skill_tokens)
            out[split] = (Examples(self.task, [0] * len(ids), token_ids=ids.tolist(), target_ids=targets), origin)
        return out


def planted_gen_spec(
    *,
    seed: int = 0,
    skills: int = 6,
    tasks: int = 8,
    held_out: int = 0,
    skills_per_task: tuple[int, int] = (2, 3),
    min_tasks_per_skill: int = 2,
    seq_len: int = 12,
    vocab_size: int = 64,
    examples_per_task: int = 400,
    router: str = "poly",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    rank: int = 4,
    steps: int = 1000,
    batch_size: int = 32,
    name: str = "planted-gen",
) -> dict[str, Any]:
    """A full spec dict over a planted generative universe: a random-init tiny GPT-2, LoRA on its attention and MLP
    (``c_attn``, ``c_proj``, ``c_fc``), one generate task per seen planted task (``gen-NN``), ``max_new_tokens`` =
    the most skills + end.

    The frozen base is initialised with ``initializer_range`` 0.3 (GPT-2's 0.02 leaves the tied output embedding so
    small that no adapter can make the logits peak: measured, the target loss stalled at 3.77 nats where 0.3
    reaches 1.3 in 60 steps).
    """
    config = PlantedConfig(
        seed=seed,
        skills=skills,
        tasks=tasks,
        held_out=held_out,
        skills_per_task=skills_per_task,
        min_tasks_per_skill=min_tasks_per_skill,
        seq_len=seq_len,
        vocab_size=vocab_size,
        examples_per_task=examples_per_task,
    )
    universe = planted_universe(config)
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in config.model_dump().items()}
    width = len(str(tasks - 1))
    return {
        "name": name,
        "model": {
            "config": {
                "model_type": "gpt2",
                "vocab_size": vocab_size + 1,
                "n_embd": hidden_size,
                "n_layer": num_layers,
                "n_head": num_heads,
                "n_positions": 2 * seq_len + 8,
                "bos_token_id": vocab_size,
                "eos_token_id": vocab_size,
                "pad_token_id": 0,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "attn_pdrop": 0.0,
                "initializer_range": 0.3,
            },
            "max_length": seq_len,
            "pooling": "last",
            "target_modules": ["c_attn", "c_proj", "c_fc"],
        },
        "adapters": {"rank": rank, "alpha": 2.0 * rank, "skills": skills, "splits": 1},
        "router": {"kind": router},
        "tasks": [
            {
                "name": f"gen-{t:0{width}d}",
                "objective": "generate",
                "max_new_tokens": skills_per_task[1] + 1,
                "data": {"source": "planted-gen", "task": t, **given},
            }
            for t in universe.seen_tasks()
        ],
        "training": {
            "steps": steps,
            "batch_size": batch_size,
            "eval_every": max(1, steps // 4),
            "checkpoint_every": steps,
            "lr": {"adapters": 3e-2, "router": 1e-2, "heads": 1e-3},
        },
    }
