"""The built-in router kinds and the parameter models of their own ``router:`` keys — torch-free.

A spec is checked against these (:mod:`taskgraph.spec.models`) without importing a router: each kind is
declared by ``"module:Class"`` in :data:`taskgraph.registry.ROUTERS` and its module is imported when a model
is built. The class's ``@ROUTERS.register`` decorator must name the same kind and parameter model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from taskgraph.registry import ROUTERS

DEFAULT_ROUTER = "poly"  # router.kind when a spec gives none
# graph-router keys retired on 2026-12-07: none won accuracy in any regime measured, nor anything else (contrast and
# the warm start stay: re-measured with the three-seed selection they still win allocation precision with declared
# relations on planted-few); the measurements stay in the research log, docs/graph-prior.md. A spec naming one is an error that says so (GraphRouterParams._retired).
RETIRED_GRAPH_KEYS = (
    "sparsity",
    "relation_estimate",
    "estimate_every",
    "estimate_weight",
)
RETIRED_MESSAGE = "retired (no win in any regime measured: docs/graph-prior.md); remove it"


class PolyRouterParams(BaseModel):
    """poly's and mhr's own ``router:`` keys (besides ``kind``, ``temperature``, ``gate_threshold``)."""

    model_config = ConfigDict(extra="forbid")

    share_layers: bool = False  # one routing row per task for every layer


class GNNParams(BaseModel):
    """``router.gnn``: the encoder's convolution type, depth and width."""

    model_config = ConfigDict(extra="forbid")

    conv: Literal["graphconv", "gat", "sage"] = "graphconv"
    layers: int = Field(1, ge=1, le=4)
    hidden: int = Field(64, ge=4, le=1024)


class GraphRouterParams(BaseModel):
    """The graph router's own ``router:`` keys (besides ``kind``, ``temperature``, ``gate_threshold``)."""

    model_config = ConfigDict(extra="forbid")

    gnn: GNNParams = Field(default_factory=GNNParams)
    smoothness: float = Field(0.1, ge=0)  # λ_s
    budget: float = Field(0.0, ge=0)  # λ_g: compute-budget strength (0: off)
    budget_target: float = Field(0.5, ge=0, le=1)  # ρ_g: target mean soft gate
    gate_init: float = Field(0.9, gt=0, lt=1)  # every gate's starting value g
    dense_limit: int = Field(64, ge=1)  # all task pairs are candidate relations while T ≤ this
    descriptions: bool = True  # add hashed description words to the task features
    zero_shot: list[str] = Field(default_factory=list)  # tasks added after training (the last tasks)
    # task node features from side information (taskgraph.routing.task_features); [free] alone: a free vector per task
    features: list[Literal["free", "description", "examples", "relations"]] = Field(default_factory=lambda: ["free"])
    free_l2: float = Field(1e-3, ge=0)  # L2 on the free residual when a side feature is on
    examples: int = Field(32, ge=1)  # unlabeled inputs embedded per task (features: examples)
    relation_dims: int = Field(16, ge=1, le=256)  # r: the relations' spectral embedding size (features: relations)
    task_messages: bool = True  # false: no task-task messages (the ablation: the same features through an MLP)
    # a contrastive prior (taskgraph.routing.graph_priors, "Contrast"): pairs with low R pushed apart in routing
    contrast: float = Field(0.0, ge=0)  # λ_c (0: off)
    contrast_margin: float = Field(0.5, gt=0, le=2)  # m: routing distance beyond which a pair is apart enough
    # a warm start (taskgraph.routing.graph_priors, "Warm start"): task features start from the declared relations' spectrum
    warm_start: Literal["none", "relations"] = "none"
    warm_start_noise: float = Field(0.1, ge=0)  # σ: standard normal noise added to the spectral features

    @model_validator(mode="wrap")
    @classmethod
    def _retired(cls, data: Any, handler: Any) -> GraphRouterParams:
        """A retired key is one problem of its own (at its line), reported beside the other keys' problems."""
        retired = [k for k in RETIRED_GRAPH_KEYS if isinstance(data, dict) and k in data]
        if not retired:
            return handler(data)
        errors = [
            InitErrorDetails(type=PydanticCustomError("retired", RETIRED_MESSAGE), loc=(key,), input=data[key])
            for key in retired
        ]
        try:
            handler({k: v for k, v in data.items() if k not in retired})
        except ValidationError as exc:
            errors += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], "{message}", {"message": e["msg"]}),
                    loc=tuple(e["loc"]),
                    input=e.get("input"),
                )
                for e in exc.errors()
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(
                f"router.features: name each of free, description, examples, relations at most once, at least one; got {value}"
            )
        return value


ROUTERS.declare("shared", "taskgraph.routing.shared:SharedRouter")
ROUTERS.declare("private", "taskgraph.routing.private:PrivateRouter")
ROUTERS.declare("poly", "taskgraph.routing.poly:PolyRouter", params=PolyRouterParams)
ROUTERS.declare("mhr", "taskgraph.routing.mhr:MHRRouter", params=PolyRouterParams)
ROUTERS.declare("mhr-mu", "taskgraph.routing.mhr_mu:MHRMuRouter")
ROUTERS.declare("graph", "taskgraph.routing.graph:GraphRouter", params=GraphRouterParams)
