"""NewTasks: the :class:`~taskgraph.model.TaskGraphModel` methods that add a task after training.

A task unseen in training joins a trained model in one of three ways: routed zero-shot through its relations
(:meth:`NewTasks.add_task_from_relations`, graph router), attached from its description, examples and / or
relations with no gradient step (:meth:`NewTasks.attach_task`, :mod:`taskgraph.model.attach`), or given a routing
row that a few examples then train (:meth:`NewTasks.add_task_to_learn`). Each checks the spec with the task
appended before anything changes, gives the task a fresh head and records it in the spec, so
``save_pretrained`` / ``from_pretrained`` rebuild it. ``TaskGraphModel`` inherits these methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from taskgraph.errors import ModelError, validation_problems
from taskgraph.model.footprint import check_positions
from taskgraph.model.heads import TaskHeads, head_widths
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router
from taskgraph.spec.models import Spec

if TYPE_CHECKING:
    from taskgraph.adapters.routed_lora import RoutedLoRALinear

SKILL_INITS = ("lora", "average")  # how a skill appended to every inventory starts (add_task_to_learn)


class NewTasks:
    """Adding a task to a built model: the methods :class:`~taskgraph.model.TaskGraphModel` inherits for it."""

    # what they read and change of the model (TaskGraphModel sets them)
    spec: Spec
    base: nn.Module
    lm_kind: str | None
    router: Router
    heads: TaskHeads
    adapted: list[tuple[str, RoutedLoRALinear]]
    task_names: list[str]
    _task_ids: dict[str, int]

    def add_task_from_relations(
        self,
        name: str,
        num_labels: int,
        relate: dict[str, float],
        description: str | None = None,
        *,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
        side: dict[str, Tensor] | None = None,
    ) -> int:
        """Add a task unseen in training, routed zero-shot through its relations; returns its id.

        The router gives the task a node related to the existing tasks ``relate`` (``{name:
        weight in [0, 1]}``) and routes it by message passing from them (graph router only; the
        static routers raise ModelError and nothing changes — see :meth:`add_task_to_learn`). The task
        gets a fresh head (fit it on a few examples with the encoder frozen). The spec records the
        task (with ``family`` and its ``data`` block, if given), its relations and
        ``router.zero_shot``, so ``save_pretrained`` / ``from_pretrained`` rebuild it. The
        description is recorded; ``side``: the task's side-feature blocks (``router.features``; what
        :meth:`attach_task` computes from a description and examples). ``generation``: the
        task's generative keys (``{"objective": "generate", "choices": [...], "template": ..., "max_new_tokens": ...}``;
        its ``num_labels`` then follows its choices and it has no head).
        """
        data_spec = self._spec_with_task(name, num_labels, description, family, data, generation)
        ids = {self.task_index(other): weight for other, weight in relate.items()}
        index = (  # static routers raise here, before anything changed
            self.router.add_task_from_relations(ids, side=side) if side else self.router.add_task_from_relations(ids)
        )
        data_spec["relations"]["declared"] += [[other, name, float(w)] for other, w in relate.items()]
        data_spec["router"]["zero_shot"] = [
            *data_spec["router"].get("zero_shot", []),
            name,
        ]  # how the router rebuilds it
        return self._register_task(Spec.model_validate(data_spec), name, num_labels, index)

    def attach_task(
        self,
        name: str,
        *,
        description: str | Sequence[int] | None = None,
        examples: Sequence[str | Sequence[int]] | None = None,
        relations: Mapping[str, float] | None = None,
        k: int | None = None,
        num_labels: int = 2,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> int:
        """Attach a new task to the graph router from its description, examples and / or relations, with no gradient
        step; returns its id (:func:`taskgraph.model.attach.attach_task`)."""
        from taskgraph.model.attach import attach_task

        return attach_task(
            self,
            name,
            description=description,
            examples=examples,
            relations=relations,
            k=k,
            num_labels=num_labels,
            family=family,
            data=data,
            generation=generation,
        )

    def add_task_to_learn(
        self,
        name: str,
        num_labels: int,
        *,
        own_skill: bool = False,
        skill_init: str = "lora",
        description: str | None = None,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a task whose routing is learned from a few examples (few-shot); returns its id.

        The router gives it a routing row (:meth:`Router.add_task_to_learn`): ``poly`` / ``mhr`` a
        trainable logits row, ``mhr-mu`` / ``shared`` nothing to learn, ``private`` a skill of its own.
        ``own_skill`` gives a ``poly`` / ``mhr`` task one skill per layer that only it uses (exactly
        one-hot routing; the other tasks weigh it exactly 0). When the inventories grow, the new skill
        of every layer starts as LoRA does (``skill_init="lora"``: A uniform ±1/√d_in, B = 0) or as the
        uniform average of the layer's skills (``"average"``, per head, A and B separately: MHR-μ).
        The task gets a fresh head. The spec lists the task (and ``adapters.skills`` follows a grown
        inventory), so ``save_pretrained`` / ``from_pretrained`` rebuild the same shapes. The graph
        router raises ModelError (use :meth:`add_task_from_relations`); nothing changes when anything raises.
        ``generation`` as :meth:`add_task_from_relations`.
        """
        if skill_init not in SKILL_INITS:
            raise ModelError(f"skill_init {skill_init!r}: choose from {list(SKILL_INITS)}")
        data_spec = self._spec_with_task(name, num_labels, description, family, data, generation)
        spec = Spec.model_validate(data_spec)
        skills = self.router.skills
        index = self.router.add_task_to_learn(own_skill)  # raises before anything changed
        if self.router.skills != skills:
            assert self.router.skills == skills + 1, (skills, self.router.skills)
            for _, layer in self.adapted:
                layer.append_skill(skill_init)
            router_cls: type[Router] = ROUTERS.get(spec.router.kind).obj
            if router_cls.inventory_size(spec.adapters.skills, len(spec.tasks)) != self.router.skills:
                data_spec["adapters"]["skills"] = self.router.skills  # poly / mhr: K is the spec's skills
                spec = Spec.model_validate(data_spec)
        return self._register_task(spec, name, num_labels, index)

    def _spec_with_task(
        self,
        name: str,
        num_labels: int,
        description: str | None,
        family: str | None,
        data: Mapping[str, Any] | None,
        generation: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The spec as a dict with the task appended, checked whole; ModelError for a taken name or an invalid task."""
        from taskgraph.spec.models import TaskSpec

        if name in self._task_ids:
            raise ModelError(f"task {name!r} already exists; known tasks are {self.task_names}")
        task = task_entry(name, num_labels, description=description, family=family, data=data, generation=generation)
        if task.get("objective") == "generate" and self.lm_kind is None:
            raise ModelError(f"cannot add generative task {name!r}: this model's base has no LM head")
        try:
            TaskSpec.model_validate(task)
        except ValueError as exc:
            raise ModelError(f"cannot add task {name!r}: {validation_problems(exc, root='the task')}") from None
        spec = self.spec.model_dump(mode="json", exclude_none=True)
        spec["tasks"].append(task)
        try:
            checked = Spec.model_validate(spec)  # e.g. an unknown data source or its parameters
        except ValueError as exc:
            problems = validation_problems(exc, root="the spec")
            raise ModelError(f"cannot add task {name!r}: the spec with it is invalid: {problems}") from None
        try:  # a saved model must rebuild from its spec: its prompt and target fit the base's positions
            check_positions(checked, getattr(self.base, "config", None))
        except ModelError as exc:
            raise ModelError(f"cannot add task {name!r}: {exc}") from None
        return spec

    def _register_task(self, spec: Spec, name: str, num_labels: int, index: int) -> int:
        self.heads.add_task(head_widths(spec.tasks[-1:])[0])
        self.spec = spec
        self._task_ids[name] = index
        assert index == len(self.spec.tasks) - 1 == len(self.heads.heads) - 1 == self.router.num_tasks - 1
        return index


def task_entry(
    name: str,
    num_labels: int,
    *,
    description: str | None = None,
    family: str | None = None,
    data: Mapping[str, Any] | None = None,
    generation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new task as a spec's ``tasks:`` entry (unchecked): a generative task's ``num_labels`` follows its choices,
    so it is left out."""
    task: dict[str, Any] = {"name": name, "num_labels": num_labels}
    task.update({k: v for k, v in (("description", description), ("family", family)) if v})
    if data is not None:
        task["data"] = dict(data)
    if generation:
        task.update(generation)
        if task.get("objective") == "generate":
            task.pop("num_labels")  # it follows the choices
    return task
