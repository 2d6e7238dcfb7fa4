"""What every router returns, and the contract every router implements.

A router turns task ids into, per adapted layer, a **gate** (is this layer's adapter on for the
task?) and **mixture weights** over the layer's K skills in each of H heads. Routers are
registered by kind in :data:`taskgraph.registry.ROUTERS`; a new router is one new file: a
:class:`Router` subclass with the ``@ROUTERS.register(kind, params=...)`` decorator.

The contract (what :class:`~taskgraph.model.TaskGraphModel`, adaptation and the tests rely on; the
suite ``tests/routing/test_router_contract.py`` runs it over every registered kind):

* ``__init__(num_tasks, num_layers, heads, skills, spec: RouterSpec)`` — or override :meth:`Router.from_spec`
  (the graph router reads the relations and task names too);
* :meth:`Router.inventory_size` — K as this router wants it (``shared``: 1, ``private``: T);
* :meth:`Router.forward` — **abstract**: ``[U]`` distinct task ids → :class:`Routing` with ``gates [U, L]``
  in [0, 1] and ``weights [U, L, H, K]`` whose rows sum to 1;
* :meth:`Router.regularizer` — extra loss terms (zero by default);
* the router's adaptation facts: :attr:`Router.adapt_modes` (the few-/zero-shot modes it supports) and
  :meth:`Router.adaptation_plan` (how a new task is added and what is trained), and the two ways of adding
  a task after training: :meth:`Router.add_task_to_learn` (a routing row to learn from examples) and
  :meth:`Router.add_task_from_relations` (zero-shot, routed from relations: the graph router);
* :meth:`Router.task_parameters` — the entries holding one task's own routing.

A router is asked only for the distinct tasks of the current batch (``U ≤ B``), so the cost of
routing does not grow with the number of tasks T (the graph router runs its GNN over the whole
graph once per step and then selects the rows it was asked for).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor, nn

from taskgraph.errors import ModelError, validation_problems

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec, Spec


P = TypeVar("P", bound=BaseModel)


def router_params(spec: RouterSpec, model: type[P]) -> P:
    """A router spec's own keys as the kind's parameter model ``model`` (already validated when the spec
    came through :class:`~taskgraph.spec.Spec`; validated here for a bare ``RouterSpec``).

    Raises:
        ModelError: naming the first bad key, e.g. ``router.share_layers: Input should be a valid boolean``.
    """
    if isinstance(spec.params, model):
        return spec.params
    try:
        return model.model_validate(spec.own_fields())
    except ValidationError as exc:
        raise ModelError(validation_problems(exc, prefix="router.", limit=1)) from None


@dataclass
class Routing:
    """Gates and mixture weights for a set of tasks.

    Args:
        gates: ``[U, L]`` in [0, 1]; the value multiplying each layer's adapter output. Static
            routers give all ones; the graph router gives a straight-through hard gate
            (forward value exactly 0 or 1).
        weights: ``[U, L, H, K]``; non-negative, each ``[h, :]`` row sums to 1.
        choice: ``[U, L, H]`` long, or None. Set when every weight row is one-hot (``private``):
            the adapter layers then index-select skill ``choice`` instead of mixing.
    """

    gates: Tensor
    weights: Tensor
    choice: Tensor | None = None

    def for_tasks(self, rows: Tensor) -> Routing:
        """The routing of rows ``rows`` ([N] long indices into the U tasks) — e.g. per example."""
        choice = None if self.choice is None else self.choice.index_select(0, rows)
        return Routing(self.gates.index_select(0, rows), self.weights.index_select(0, rows), choice)

    def to(self, device: torch.device | str) -> Routing:
        choice = None if self.choice is None else self.choice.to(device)
        return Routing(self.gates.to(device), self.weights.to(device), choice)

    @property
    def num_tasks(self) -> int:
        return self.weights.shape[0]


ADAPT_MODES = ("full", "routing", "mhr-mu", "zero-shot")


@dataclass(frozen=True)
class AdaptationPlan:
    """How a router adapts to a new task in one mode (see :mod:`taskgraph.adapt.modes` for the modes).

    Args:
        add: ``"relations"`` (:meth:`Router.add_task_from_relations`, the graph router) or ``"learned"``
            (:meth:`Router.add_task_to_learn`).
        own_skill: the new task gets a skill of its own (``poly`` / ``mhr`` in mhr-mu mode).
        skill_init: how a new skill starts: ``"lora"`` or ``"average"``.
        routing: the new task's routing row / node is trained.
        adapters: ``"all"`` skills, only the ``"new"`` skill, or ``"none"``.
        router_train: the router runs in training mode during adaptation (``poly`` / ``mhr``: relaxed
            Bernoulli routing, as in training). The graph router runs in eval mode: its training
            forward advances the refresh schedule of the candidate relations, which other tasks read.
    """

    add: Literal["relations", "learned"]
    own_skill: bool
    skill_init: Literal["lora", "average"]
    routing: bool
    adapters: Literal["all", "new", "none"]
    router_train: bool

    @property
    def other_tasks_change(self) -> bool:
        """Whether adaptation moves parameters the trained tasks read (only tuning shared skills does)."""
        return self.adapters == "all"


class Router(nn.Module, metaclass=ABCMeta):
    """Base of all routers (see the module docstring for the contract).

    Args:
        num_tasks: T, the number of task rows the router holds.
        num_layers: L, the number of adapted linear modules.
        heads: H, the number of routing heads (MHR); 1 for Poly.
        skills: K, the number of skills in every layer's inventory.

    Parameters of a router go into the optimizer's ``router`` group.

    Attributes:
        adapt_modes: the adaptation modes of :data:`ADAPT_MODES` this router supports. The default — a
            router with no routing to learn (``shared``, ``mhr-mu``): ``full`` and ``mhr-mu`` both tune the
            skills every task mixes.
        has_gates: whether the router's gates can close (the graph router); a static router's gates are all 1,
            so gate plots and gated-vs-open timing say nothing for it.
        infinite_masks: the router's parameters that may hold ±∞ on purpose (Poly's logits of a skill one task
            owns); a checkpoint whose other tensors are not finite is refused at load.
    """

    adapt_modes: ClassVar[tuple[str, ...]] = ("full", "mhr-mu")
    has_gates: ClassVar[bool] = False  # can close a layer's adapter for a task (otherwise every gate is 1)
    infinite_masks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.num_layers = num_layers
        self.heads = heads
        self.skills = skills

    @classmethod
    def from_spec(cls, spec: Spec, num_layers: int, skills: int) -> Router:
        """Build this router for a model of ``num_layers`` adapted layers with ``skills`` skills each.

        Static routers need only the counts; the graph router overrides this to also read the
        relations, task names and descriptions.
        """
        return cls(len(spec.tasks), num_layers, spec.adapters.splits, skills, spec.router)  # type: ignore[call-arg]

    def bind_base(self, width: int) -> None:
        """Told the base's hidden size ``width`` once, after construction: a router whose inputs are embeddings by the
        base (the graph router's side features, ``router.features``) sizes them here; nothing by default."""

    @property
    def side_kinds(self) -> list[str]:
        """The side features this router reads per task (``description``, ``examples``, ``relations``); none by
        default."""
        return []

    @classmethod
    def inventory_size(cls, skills: int, num_tasks: int) -> int:
        """K, the number of skills every layer holds under this router (``shared``: 1, ``private``: T)."""
        return skills

    @abstractmethod
    def forward(self, tasks: Tensor) -> Routing:  # tasks: [U] long, distinct task ids
        """The routing of the distinct tasks ``tasks`` ``[U]``: gates ``[U, L]``, weights ``[U, L, H, K]``."""

    @classmethod
    def adaptation_plan(cls, mode: str) -> AdaptationPlan:
        """How this router adapts to a new task in ``mode`` (one of :attr:`adapt_modes`).

        The default is that of a router with no routing to learn: the new task mixes the skills every task
        mixes, so both modes tune those skills (other tasks change).
        """
        cls.check_adapt_mode(mode)
        return AdaptationPlan("learned", False, "lora", routing=False, adapters="all", router_train=True)

    @classmethod
    def check_adapt_mode(cls, mode: str) -> None:
        """ModelError unless this router supports ``mode``."""
        if mode not in cls.adapt_modes:
            raise ModelError(f"{cls.__name__} supports the adaptation modes {list(cls.adapt_modes)}, not {mode!r}")

    def add_task_from_relations(self, relate: dict[int, float]) -> int:
        """Route a task unseen in training from its relations ``{task id: weight}``; returns its id.

        Only a router that routes through task relations can do this (the graph router).
        """
        raise ModelError(
            f"zero-shot routing of a new task needs the graph router (router.kind: graph); "
            f"{type(self).__name__} keeps one learned routing row per trained task and cannot route a task "
            f"from its relations. Train with router.kind: graph, or adapt this model few-shot instead"
        )

    def add_task_to_learn(self, own_skill: bool = False) -> int:
        """Add a task whose routing is learned from a few of its examples (few-shot); returns its id.

        Static routers give it a new routing row (``poly`` / ``mhr``: a logits row to train, initialised
        as in training; ``mhr-mu`` / ``shared``: nothing to learn). ``own_skill=True`` also gives the
        task one new skill per layer that only it uses (:attr:`skills` grows by one; the model grows
        every inventory to match): MHR-μ's "average adapter", or ``private``'s one LoRA per task, which
        it always does. Routers that route from relations (``graph``) take new tasks by :meth:`add_task_from_relations`.
        """
        raise ModelError(
            f"{type(self).__name__} cannot add a task to learn its routing from examples; the graph router "
            f"routes a new task from its relations: use add_task_from_relations with relations to existing tasks"
        )

    def task_parameters(self, task: int) -> list[tuple[str, nn.Parameter, Tensor]]:
        """The parameters that hold task ``task``'s own routing, each with a bool mask of its entries.

        ``[(name inside the router, parameter, mask broadcastable to it)]``; training only the masked
        entries changes the routing of this task alone (for a task added after training). Empty for
        routers with no routing to learn (``shared``, ``private``, ``mhr-mu``).
        """
        return []

    def regularizer(self) -> Tensor:
        """Extra loss terms of this router (relation priors, compute budget); zero by default."""
        return torch.zeros((), device=self._device())

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"tasks={self.num_tasks}, layers={self.num_layers}, heads={self.heads}, skills={self.skills}"
