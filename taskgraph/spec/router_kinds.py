"""The built-in router kinds and the parameter models of their own ``router:`` keys — torch-free.

A spec is checked against these (:mod:`taskgraph.spec.models`) without importing a router: each kind is
declared by ``"module:Class"`` in :data:`taskgraph.registry.ROUTERS` and its module is imported when a model
is built. The class's ``@ROUTERS.register`` decorator must name the same kind and parameter model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskgraph.registry import ROUTERS

DEFAULT_ROUTER = "poly"  # router.kind when a spec gives none


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
    # relations from what tasks do (taskgraph.routing.relation_estimate): a target for R every N steps
    relation_estimate: Literal["none", "routing", "gradient", "update"] = "none"
    estimate_every: int = Field(50, ge=1)  # N: training steps between estimates
    estimate_weight: float = Field(1.0, ge=0)  # λ_e: pull of R towards the estimate
    # a contrastive prior (taskgraph.routing.graph_priors, "Contrast"): pairs with low R pushed apart in routing
    contrast: float = Field(0.0, ge=0)  # λ_c (0: off)
    contrast_margin: float = Field(0.5, gt=0, le=2)  # m: routing distance beyond which a pair is apart enough
    # routing sparsity (taskgraph.routing.graph_priors, "Sparsity"): normalised routing entropy, beside a prior
    sparsity: float = Field(0.0, ge=0)  # λ_H (0: off)
    # a warm start (taskgraph.routing.graph_priors, "Warm start"): task features start from the declared relations' spectrum
    warm_start: Literal["none", "relations"] = "none"
    warm_start_noise: float = Field(0.1, ge=0)  # σ: standard normal noise added to the spectral features
    # task node features from side information (taskgraph.routing.task_features); [free] alone: a free vector per task
    features: list[Literal["free", "description", "examples", "relations"]] = Field(default_factory=lambda: ["free"])
    free_l2: float = Field(1e-3, ge=0)  # L2 on the free residual when a side feature is on
    examples: int = Field(32, ge=1)  # unlabeled inputs embedded per task (features: examples)
    relation_dims: int = Field(16, ge=1, le=256)  # r: the relations' spectral embedding size (features: relations)
    task_messages: bool = True  # false: no task-task messages (the ablation: the same features through an MLP)

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
