"""``TaskGraph``: tasks, their declared relations, and the adapter inventory they route over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskgraph.errors import GraphError
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK, adapter_node, layer_node, task_node
from taskgraph.spec.models import DataSpec, Spec, TaskSpec

if TYPE_CHECKING:  # networkx is imported when a view is built (to_networkx), not with the package
    import networkx as nx

_DEFAULT_MODEL = {"config": {"model_type": "bert"}}


class TaskGraph:
    """Tasks (nodes) and weighted task–task relations (undirected edges), built in Python or from a spec.

    The other sections of a spec (model, adapters, router, training, relation learning settings)
    ride along unchanged, so ``TaskGraph.from_spec(spec).to_spec() == spec``.

    Example::

        g = TaskGraph("sentiment")
        g.add_task("tweets", num_labels=2)
        g.add_task("movies", num_labels=2, relate={"tweets": 0.8})
    """

    def __init__(self, name: str = "taskgraph", *, settings: dict[str, Any] | None = None) -> None:
        self.name = name
        self._settings: dict[str, Any] = dict(settings or {})  # model / adapters / router / training / relations
        self._tasks: dict[str, TaskSpec] = {}
        self._relations: dict[frozenset[str], tuple[str, str, float]] = {}

    # ---- building -------------------------------------------------------------------------------

    def add_task(
        self,
        name: str,
        num_labels: int,
        *,
        data: DataSpec | dict[str, Any] | None = None,
        description: str | None = None,
        relate: dict[str, float] | None = None,
    ) -> TaskSpec:
        """Add a task; ``relate`` declares its relations to existing tasks at once."""
        if name in self._tasks:
            raise GraphError(f"task {name!r} already exists; tasks are {self.tasks}")
        try:
            task = TaskSpec(name=name, num_labels=num_labels, data=data, description=description)
        except ValueError as exc:
            raise GraphError(f"cannot add task {name!r}: {_first_error(exc)}") from None
        for other, weight in (relate or {}).items():  # check everything before changing anything
            self._check_known(other, f"relation of new task {name!r}")
            _check_weight(name, other, weight)
        self._tasks[name] = task
        for other, weight in (relate or {}).items():
            self.relate(name, other, weight)
        return task

    def relate(self, a: str, b: str, weight: float) -> None:
        """Declare (or update) the relation between tasks ``a`` and ``b`` with weight in [0, 1]."""
        self._check_known(a, "relate")
        self._check_known(b, "relate")
        if a == b:
            raise GraphError(f"cannot relate task {a!r} to itself")
        _check_weight(a, b, weight)
        self._relations[frozenset((a, b))] = (a, b, float(weight))

    def remove_task(self, name: str) -> None:
        """Remove a task and every relation it takes part in."""
        self._check_known(name, "remove_task")
        del self._tasks[name]
        self._relations = {k: v for k, v in self._relations.items() if name not in k}

    def _check_known(self, name: str, where: str) -> None:
        if name not in self._tasks:
            raise GraphError(f"{where}: unknown task {name!r}; tasks are {self.tasks}")

    # ---- reading --------------------------------------------------------------------------------

    @property
    def tasks(self) -> list[str]:
        """Task names in insertion order (their index is the task id)."""
        return list(self._tasks)

    def task(self, name: str) -> TaskSpec:
        self._check_known(name, "task")
        return self._tasks[name]

    @property
    def relations(self) -> list[tuple[str, str, float]]:
        """Declared relations as ``(a, b, weight)`` in declaration order."""
        return list(self._relations.values())

    def weight(self, a: str, b: str) -> float | None:
        """The declared weight between ``a`` and ``b``, or None."""
        rel = self._relations.get(frozenset((a, b)))
        return None if rel is None else rel[2]

    def neighbours(self, name: str) -> dict[str, float]:
        """The declared neighbours of ``name`` with their weights."""
        self._check_known(name, "neighbours")
        return {(b if a == name else a): w for a, b, w in self.relations if name in (a, b)}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __repr__(self) -> str:
        return f"TaskGraph({self.name!r}, tasks={len(self._tasks)}, relations={len(self._relations)})"

    # ---- spec round trip ------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: Spec) -> TaskGraph:
        """The task graph of a validated spec (its other sections are kept for :meth:`to_spec`)."""
        data = spec.model_dump(mode="json", exclude_none=True)
        graph = cls(spec.name, settings={k: v for k, v in data.items() if k not in ("name", "tasks")})
        for task in spec.tasks:
            graph._tasks[task.name] = task.model_copy(deep=True)
        for a, b, w in spec.relations.declared:
            graph._relations[frozenset((a, b))] = (a, b, float(w))
        return graph

    def to_spec(self, **sections: Any) -> Spec:
        """A validated :class:`Spec` of this graph; ``sections`` override kept ones (e.g. ``model=...``)."""
        from taskgraph.spec.loader import spec_from_dict

        data: dict[str, Any] = {"name": self.name, **self._settings}
        for key, value in sections.items():
            data[key] = value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value
        data.setdefault("model", _DEFAULT_MODEL)
        relations = dict(data.get("relations") or {})
        relations["declared"] = [[a, b, w] for a, b, w in self.relations]
        data["relations"] = relations
        data["tasks"] = [t.model_dump(mode="json", exclude_none=True) for t in self._tasks.values()]
        return spec_from_dict(data, source=f"<TaskGraph {self.name!r}>")

    # ---- views ----------------------------------------------------------------------------------

    def to_networkx(self, num_layers: int | None = None, skills: int | None = None) -> nx.Graph:
        """An undirected networkx view for analysis and exports.

        Nodes ``task:<name>`` (``type``, ``label``, ``num_labels``, ``description``); with
        ``num_layers`` and ``skills`` also ``layer:<l>`` and ``adapter:<l>:<k>`` nodes with
        ``in`` (adapter → layer), ``next`` (consecutive layers) and ``uses`` (task → adapter,
        uniform weight 1/K until a trained router gives real ones) edges. Relation edges have
        ``type="relates"``, ``weight`` and ``declared=True``.
        """
        import networkx as nx

        g = nx.Graph(name=self.name)
        for task in self._tasks.values():
            attrs: dict[str, Any] = {"type": TASK, "label": task.name, "num_labels": task.num_labels}
            if task.description:
                attrs["description"] = task.description
            g.add_node(task_node(task.name), **attrs)
        for a, b, w in self.relations:
            g.add_edge(task_node(a), task_node(b), type="relates", weight=w, declared=True)
        if num_layers is None or skills is None:
            return g
        for layer in range(num_layers):
            g.add_node(layer_node(layer), type=LAYER, label=f"layer {layer}", position=layer)
            for k in range(skills):
                g.add_node(adapter_node(layer, k), type=ADAPTER, label=f"L{layer}·s{k}", layer=layer, skill=k)
                g.add_edge(adapter_node(layer, k), layer_node(layer), type="in", weight=1.0)
                for name in self._tasks:
                    g.add_edge(task_node(name), adapter_node(layer, k), type="uses", weight=1.0 / skills)
                if layer + 1 < num_layers:
                    for k2 in range(skills):
                        g.add_edge(adapter_node(layer, k), adapter_node(layer + 1, k2), type="next", weight=1.0)
        return g


def _check_weight(a: str, b: str, weight: object) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
        raise GraphError(f"relation {a!r}–{b!r}: weight must be a number in [0, 1], got {weight!r}")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
