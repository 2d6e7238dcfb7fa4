"""The planted benchmark: synthetic tasks built from known latent skills.

Allocation precision and relation recovery need ground truth: which skills each task uses, and
which tasks share one. The planted benchmark makes that truth by construction.

Construction (deterministic by ``seed``):

- **Vocabulary.** Token ids ``1 .. vocab_size - 1`` (0 is left for padding) are shuffled; skill
  ``s`` owns ``tokens_per_skill`` of them, ``V_s`` (disjoint), the rest are filler.
- **Skills of tasks.** Task ``t`` uses a set ``S_t`` of 2–3 skills (``skills_per_task``); all sets
  are distinct, and every skill is used by at least ``min_tasks_per_skill`` of the seen tasks.
  The last ``held_out`` tasks are flagged held out (for few-/zero-shot adaptation): new
  combinations of seen skills. :attr:`PlantedUniverse.incidence` is the ``[T, S]`` truth.
- **Inputs.** ``seq_len`` filler tokens drawn uniformly; then *every* skill writes one token of
  its set ``V_s`` at a distinct random position, either in the first half of the sequence
  (skill bit ``b_s = 1``) or in the second (``b_s = 0``). Skills live in the token sets ``V_s``
  (:attr:`PlantedUniverse.skill_tokens`), not in a particular layer.
- **Labels.** Task ``t``'s label counts its skills whose token lies in the first half,
  ``y = Σ_{s ∈ S_t} b_s`` (``|S_t| + 1`` classes). Labels are exactly balanced: ``y`` is drawn
  evenly, then a random ``y``-subset of ``S_t`` goes to the first half and the rest of ``S_t`` to
  the second. Skills outside ``S_t`` go to either half with probability 1/2: the task must ignore
  them, while other tasks need them.

Why this shape. Every example holds the same multiset of skill tokens, so the bag of tokens says
nothing about any label: a linear head on a frozen encoder can only read token × position
interactions that a random encoder barely makes, and stays at chance. An adapter can learn to
turn attention onto its skills' tokens (LoRA on the query) and read their positions from the
position embedding they carry (LoRA on the value); summed over the attended tokens that is the
label, linearly. One shared adapter must attend to the tokens of every task's skills at once, and
the positions it sums then mix the task's skills with the others': tasks conflict, and the
shared adapter underfits. Skills shared by tasks (true routing) pool the data of ≥ 3 tasks per
skill.

Measured with the defaults (20 seen tasks; frozen random 2-layer BERT, hidden 64, mean pooling;
per-task linear heads; rank-4 LoRA on query / value, scale 2; 3,000 steps of 32 mixed-task
examples; test accuracy, mean over tasks, then over seeds 0-2; chance 0.29). "True skill
routing" is 8 skill LoRAs mixed Poly-style with uniform weights over each task's true ``S_t``:

    lr (adapters, heads)   heads-only   one shared LoRA   LoRA per task   true skill routing
    3e-3                   0.29         0.77              0.90            0.95
    1e-3                   0.30         0.66              0.84            0.90

A linear probe fitted to convergence on the frozen encoder scores 0.29-0.30 (at chance; a test
checks it). After only 600 steps every adapter is still learning (shared 0.55, per task 0.44).
Variants rejected on the way: a token-*presence* skill (bit = "a token of ``V_s`` occurs") was
learnable, but the frozen encoder reads presence from the bag of tokens (converged probe
0.43-0.63); an XOR label was unlearnable by every mode; sequences of 32 slowed every adapter down
(per task 0.70 after 3,000 steps).

Nothing here knows about routers: the generator is not shaped to make any routing metric easy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taskgraph.data.base import Source
from taskgraph.data.examples import SPLITS, Examples, split_counts
from taskgraph.data.planted_draws import plant_examples, sample_incidence
from taskgraph.errors import DataError, validation_problems
from taskgraph.registry import SOURCES
from taskgraph.spec.models import Seed


class PlantedConfig(BaseModel):
    """The planted universe: everything but which task a spec task is. Same config → same universe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: Seed = 0
    skills: int = Field(8, ge=2, le=64)
    tasks: int = Field(24, ge=1, le=4096)
    held_out: int = Field(4, ge=0)
    skills_per_task: tuple[int, int] = (2, 3)
    min_tasks_per_skill: int = Field(3, ge=1)
    tokens_per_skill: int = Field(1, ge=1)
    seq_len: int = Field(16, ge=2, le=4096)
    vocab_size: int = Field(512, ge=8)
    examples_per_task: int = Field(1000, ge=3)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)

    @model_validator(mode="after")
    def _feasible(self) -> PlantedConfig:
        lo, hi = self.skills_per_task
        problems = []
        if not 1 <= lo <= hi <= self.skills:
            problems.append(
                f"skills_per_task {list(self.skills_per_task)} must be [min, max] with "
                f"1 <= min <= max <= skills ({self.skills})"
            )
        elif sum(math.comb(self.skills, k) for k in range(lo, hi + 1)) < self.tasks:
            problems.append(f"{self.skills} skills in sets of {lo}-{hi} make fewer than {self.tasks} distinct tasks")
        if self.held_out >= self.tasks:
            problems.append(f"held_out ({self.held_out}) must be smaller than tasks ({self.tasks})")
        elif (self.tasks - self.held_out) * hi < self.skills * self.min_tasks_per_skill:
            problems.append(
                f"{self.tasks - self.held_out} seen tasks of at most {hi} skills cannot use each of "
                f"{self.skills} skills {self.min_tasks_per_skill} times; add tasks or lower "
                f"min_tasks_per_skill"
            )
        if self.seq_len < 2 * self.skills:
            problems.append(
                f"seq_len ({self.seq_len}) must be at least 2 x skills ({2 * self.skills}): "
                f"each half of a sequence may have to hold every skill's token"
            )
        if self.vocab_size - 1 < 2 * self.skills * self.tokens_per_skill:
            problems.append(
                f"vocab_size ({self.vocab_size}) leaves too few filler tokens: it must exceed "
                f"2 x skills x tokens_per_skill ({2 * self.skills * self.tokens_per_skill})"
            )
        if any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6 or self.split[0] <= 0:
            problems.append(f"split must be [train, val, test] fractions summing to 1; got {list(self.split)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PlantedParams(PlantedConfig):
    """Parameters of a ``planted`` task: the universe's config plus ``task``, its index in it."""

    task: int = Field(..., ge=0)

    @model_validator(mode="after")
    def _task_exists(self) -> PlantedParams:
        if self.task >= self.tasks:
            raise ValueError(f"task {self.task} does not exist: the planted universe has tasks 0..{self.tasks - 1}")
        return self

    def universe_config(self) -> PlantedConfig:
        return PlantedConfig(**self.model_dump(exclude={"task"}))


# --------------------------------------------------------------------------- the universe


@dataclass(frozen=True, eq=False)
class PlantedUniverse:
    """All tasks of one planted config, with the ground truth.

    Attributes:
        config: the :class:`PlantedConfig` it was built from.
        incidence: ``[T, S]`` bool, task × skill (which skills each task uses).
        held_out: ``[T]`` bool, tasks kept out of training (new combinations of seen skills).
        skill_tokens: ``[S, tokens_per_skill]`` the token ids of each skill (where skills live).
        filler_tokens: ``[F]`` every other usable token id.
    """

    config: PlantedConfig
    incidence: np.ndarray
    held_out: np.ndarray
    skill_tokens: np.ndarray
    filler_tokens: np.ndarray
    _cache: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def num_tasks(self) -> int:
        return int(self.incidence.shape[0])

    @property
    def num_skills(self) -> int:
        return int(self.incidence.shape[1])

    def skills_of(self, task: int) -> list[int]:
        """The skills task ``task`` uses, ascending."""
        return np.flatnonzero(self.incidence[task]).tolist()

    def num_labels(self, task: int) -> int:
        """``|S_t| + 1``: the label counts the task's skills whose token lies in the first half."""
        return len(self.skills_of(task)) + 1

    def seen_tasks(self) -> list[int]:
        return np.flatnonzero(~self.held_out).tolist()

    def held_out_tasks(self) -> list[int]:
        return np.flatnonzero(self.held_out).tolist()

    def relations(self) -> np.ndarray:
        """``[T, T]`` bool: tasks ``i != j`` share at least one skill (relation ground truth)."""
        inc = self.incidence.astype(np.int64)  # [T, S]
        shared = (inc @ inc.T) > 0  # [T, T]
        np.fill_diagonal(shared, False)
        return shared

    def split_sizes(self) -> dict[str, int]:
        """Examples per split of every task."""
        return dict(zip(SPLITS, split_counts(self.config.examples_per_task, self.config.split)))

    def examples(self, task: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids ``[n, seq_len]``, labels ``[n]`` and skill bits ``[n, S]`` of one split.

        Each (task, split) has its own random stream, so it does not depend on what else was built.
        """
        if not 0 <= task < self.num_tasks or split not in SPLITS:
            raise ValueError(f"no planted task {task} split {split!r}: tasks 0..{self.num_tasks - 1}, splits {SPLITS}")
        key = (task, split)
        if key not in self._cache:
            c = self.config
            rng = np.random.default_rng([c.seed, 1, task, SPLITS.index(split)])
            members = np.flatnonzero(self.incidence[task])
            self._cache[key] = plant_examples(
                rng, members, self.skill_tokens, self.filler_tokens, self.split_sizes()[split], c.seq_len
            )
        return self._cache[key]

    def __repr__(self) -> str:
        c = self.config
        return (
            f"PlantedUniverse(seed={c.seed}, skills={self.num_skills}, tasks={self.num_tasks}, "
            f"held_out={int(self.held_out.sum())}, seq_len={c.seq_len}, vocab_size={c.vocab_size})"
        )


def build_universe(config: PlantedConfig) -> PlantedUniverse:
    """A new universe built from ``config`` (see the module docstring); :func:`planted_universe` caches it."""
    rng = np.random.default_rng([config.seed, 0])
    incidence = sample_incidence(
        rng, config.skills, config.tasks, config.skills_per_task, config.held_out, config.min_tasks_per_skill
    )
    held_out = np.zeros(config.tasks, dtype=bool)
    held_out[config.tasks - config.held_out :] = True
    tokens = rng.permutation(np.arange(1, config.vocab_size))  # id 0 stays free for padding
    n_skill = config.skills * config.tokens_per_skill
    skill_tokens = np.sort(tokens[:n_skill].reshape(config.skills, config.tokens_per_skill), axis=1)
    return PlantedUniverse(config, incidence, held_out, skill_tokens, np.sort(tokens[n_skill:]))


@functools.lru_cache(maxsize=8)
def planted_universe(config: PlantedConfig) -> PlantedUniverse:
    """The universe of ``config``, cached: every task of a spec (one ``data:`` block each) shares one."""
    return build_universe(config)


@SOURCES.register("planted", params=PlantedParams)
class PlantedSource(Source):
    """One task of a planted universe (see the module docstring and :class:`PlantedParams`)."""

    kind = "planted"
    params: PlantedParams

    @property
    def universe(self) -> PlantedUniverse:
        return planted_universe(self.params.universe_config())

    def _read(self) -> dict[str, tuple[Examples, str]]:
        universe, t = self.universe, self.params.task
        expected = universe.num_labels(t)
        if self.num_labels != expected:
            raise self.fail(
                f"planted task {t} uses skills {universe.skills_of(t)}, so it has {expected} labels "
                f"(how many of its skills sit in the first half), but the task says num_labels: "
                f"{self.num_labels}; set num_labels: {expected} (planted_spec() does)"
            )
        c = universe.config
        origin = f"planted task {t}: examples_per_task {c.examples_per_task}, split {list(c.split)}"
        out: dict[str, tuple[Examples, str]] = {}
        for split in SPLITS:
            ids, labels, _ = universe.examples(t, split)
            out[split] = (Examples(self.task, labels.tolist(), token_ids=ids.tolist()), origin)
        return out


def planted_spec(
    *,
    seed: int = 0,
    skills: int = 8,
    tasks: int = 24,
    held_out: int = 4,
    skills_per_task: tuple[int, int] = (2, 3),
    min_tasks_per_skill: int = 3,
    tokens_per_skill: int = 1,
    seq_len: int = 16,
    vocab_size: int = 512,
    examples_per_task: int = 1000,
    include_held_out: bool = False,
    router: str = "poly",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    rank: int = 4,
    steps: int = 3000,
    batch_size: int = 32,
    name: str = "planted",
) -> dict[str, Any]:
    """A full spec dict over a planted universe: a random-init tiny BERT, LoRA on query / value,
    K = ``skills`` adapters per layer, one task per planted task (named ``planted-NN``; held-out
    tasks only with ``include_held_out``). The universe arguments are :class:`PlantedConfig`'s;
    each task's ``data:`` repeats those that differ from the defaults, so all share one universe.
    No relations are declared: they are the ground truth to recover.

    Raises:
        DataError: universe arguments :class:`PlantedConfig` refuses (every problem, one paragraph).
    """
    try:
        config = PlantedConfig(
            seed=seed,
            skills=skills,
            tasks=tasks,
            held_out=held_out,
            skills_per_task=skills_per_task,
            min_tasks_per_skill=min_tasks_per_skill,
            tokens_per_skill=tokens_per_skill,
            seq_len=seq_len,
            vocab_size=vocab_size,
            examples_per_task=examples_per_task,
        )
    except ValidationError as exc:
        raise DataError(f"cannot build the planted universe: {validation_problems(exc, root='its settings')}") from None
    universe = planted_universe(config)
    defaults = PlantedConfig()
    given = {k: v for k, v in config.model_dump().items() if k == "seed" or v != getattr(defaults, k)}
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}
    width = len(str(tasks - 1))
    chosen = range(tasks) if include_held_out else universe.seen_tasks()
    return {
        "name": name,
        "model": {
            "config": {
                "model_type": "bert",
                "vocab_size": config.vocab_size,
                "hidden_size": hidden_size,
                "num_hidden_layers": num_layers,
                "num_attention_heads": num_heads,
                "intermediate_size": 2 * hidden_size,
                "max_position_embeddings": max(64, config.seq_len),
                "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0,
            },
            "max_length": config.seq_len,
            "pooling": "mean",
            "target_modules": ["query", "value"],
        },
        "adapters": {"rank": rank, "alpha": 2.0 * rank, "skills": skills, "splits": 1},
        "router": {"kind": router},
        "tasks": [
            {
                "name": f"planted-{t:0{width}d}",
                "num_labels": universe.num_labels(t),
                "data": {"source": "planted", "task": t, **given},
            }
            for t in chosen
        ],
        "training": {"steps": steps, "batch_size": batch_size},
    }


TINY_PLANTED: dict[str, Any] = {
    "skills": 4,
    "held_out": 0,
    "skills_per_task": (2, 2),
    "min_tasks_per_skill": 1,
    "seq_len": 8,
    "vocab_size": 64,
    "examples_per_task": 60,
    "num_heads": 2,
    "rank": 2,
}


def tiny_planted_spec(**overrides: Any) -> dict[str, Any]:
    """:func:`planted_spec` at the size a test or a smoke run trains in about a second (:data:`TINY_PLANTED`: 4
    skills, 8-token inputs over 64 tokens, 60 examples per task, no held-out task, rank 2); ``overrides``: any of
    its arguments."""
    return planted_spec(**{**TINY_PLANTED, **overrides})
