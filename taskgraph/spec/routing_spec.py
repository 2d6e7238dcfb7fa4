"""The spec's ``router`` and ``relations`` sections: which router mixes the skills, and the task–task relations."""

from __future__ import annotations

from pydantic import Field

from taskgraph.spec.router_kinds import DEFAULT_ROUTER
from taskgraph.spec.section import KindSection, Section, TaskName, Unit


class RouterSpec(KindSection):
    """Which router produces the gates and mixture weights, and its knobs.

    ``temperature`` (τ) and ``gate_threshold`` (θ) are common to all kinds; any other key is
    the kind's own parameter, validated by the parameter model the kind registered.
    """

    kind: str = DEFAULT_ROUTER
    temperature: float = Field(1.0, gt=0)
    gate_threshold: float = Field(0.5, ge=0.0, lt=1.0)  # a gate g ∈ (0, 1) is on iff g ≥ θ; θ = 0: never off


class RelationsSpec(Section):
    """Task–task relations: declared pairs with weights, and how the relation matrix is learned."""

    declared: list[tuple[TaskName, TaskName, Unit]] = Field(default_factory=list)
    learn: bool = True
    regularization: float = Field(0.01, ge=0)  # λ_R: density penalty strength
    density: Unit = 0.5  # ρ: target mean relation weight
    pull: float = Field(1.0, ge=0)  # λ_p: pull of learned weights towards declared values
    top_k: int = Field(8, ge=1)  # candidate neighbours per task when T is large
    refresh_every: int = Field(100, ge=1)  # steps between candidate-edge refreshes
