"""The typed spec of a run: ``model``, ``adapters``, ``router``, ``relations``, ``tasks``, ``training``.

Every section forbids unknown keys. Fields owned by an extension point (a router's own parameters,
a data source's parameters) are checked against that kind's registered parameter model, so a
spec is validated against exactly the kinds that are installed. :meth:`Spec.model_validate`
reports every problem at once as a pydantic ``ValidationError``; :func:`taskgraph.spec.load_spec`
adds file and line numbers and raises :class:`~taskgraph.errors.SpecError`.

The sections live in modules of their own (:mod:`taskgraph.spec.section`, ``model_spec``, ``routing_spec``,
``task_spec``, ``training_spec``); this one holds the :class:`Spec` root and the checks that span sections, and
every section's name is imported from here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from taskgraph.registry import ROUTERS, SOURCES, Registry
from taskgraph.spec.model_spec import RENAMED_ADAPTER_KEY as RENAMED_ADAPTER_KEY
from taskgraph.spec.model_spec import AdaptersSpec, ModelSpec
from taskgraph.spec.model_spec import ImportSpec as ImportSpec
from taskgraph.spec.router_kinds import DEFAULT_ROUTER
from taskgraph.spec.routing_spec import RelationsSpec, RouterSpec
from taskgraph.spec.section import MAX_SEED as MAX_SEED
from taskgraph.spec.section import KindSection as KindSection
from taskgraph.spec.section import Section, TaskName
from taskgraph.spec.section import Seed as Seed
from taskgraph.spec.section import Unit as Unit
from taskgraph.spec.section import omit_when_default as omit_when_default
from taskgraph.spec.task_spec import GENERATIVE_KEYS as GENERATIVE_KEYS
from taskgraph.spec.task_spec import OBJECTIVES as OBJECTIVES
from taskgraph.spec.task_spec import DataSpec, TaskSpec
from taskgraph.spec.training_spec import LearningRates as LearningRates
from taskgraph.spec.training_spec import TrainingSpec


class Spec(Section):
    """A whole run. ``Spec.model_validate(dict)`` reports every problem at once."""

    name: TaskName = "taskgraph"
    model: ModelSpec
    adapters: AdaptersSpec = Field(default_factory=AdaptersSpec)
    router: RouterSpec = Field(default_factory=RouterSpec)
    relations: RelationsSpec = Field(default_factory=RelationsSpec)
    tasks: list[TaskSpec] = Field(..., min_length=1)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_given(cls, value: Any) -> Any:
        if value is None or value == []:
            raise ValueError("no tasks: give at least one task with a name and num_labels")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _all_problems(cls, data: Any, handler: Any) -> Spec:
        """Run field validation, then the cross-field and registry checks, and raise them together."""
        errors: list[InitErrorDetails] = []
        spec = None
        try:
            spec = handler(data)
        except ValidationError as exc:
            errors.extend(_as_details(exc))
        if isinstance(data, dict):
            errors.extend(_cross_checks(data))
            errors.extend(_registry_checks(data))
            errors.extend(_import_checks(data))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        assert spec is not None  # the handler succeeded: no errors
        _bind_params(spec)
        return spec

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def _as_details(exc: ValidationError) -> list[InitErrorDetails]:
    """Re-emit pydantic's errors so they can be combined with ours."""
    out: list[InitErrorDetails] = []
    for err in exc.errors():  # messages come rendered; keep them as they are
        out.append(_problem(err["type"], tuple(err["loc"]), err["msg"], err.get("input")))
    return out


def _problem(kind: str, loc: tuple[Any, ...], message: str, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": message}), loc=loc, input=value)


def _cross_checks(data: dict[str, Any]) -> list[InitErrorDetails]:
    """Checks that span sections, done on the raw document so they run even when others fail."""
    problems: list[InitErrorDetails] = []
    names: list[str] = []
    tasks = data.get("tasks")
    if isinstance(tasks, list):
        first_seen: dict[str, int] = {}
        for i, task in enumerate(tasks):
            name = task.get("name") if isinstance(task, dict) else None
            if not isinstance(name, str):
                continue
            if name in first_seen:
                problems.append(
                    _problem(
                        "duplicate_task",
                        ("tasks", i, "name"),
                        f"duplicate task name {name!r} (first used by tasks[{first_seen[name]}])",
                        name,
                    )
                )
            else:
                first_seen[name] = i
            names.append(name)
    relations = data.get("relations")
    declared = relations.get("declared") if isinstance(relations, dict) else None
    if isinstance(declared, list) and names:
        known = set(names)  # 10,000 tasks × 10,000 relations: a set, not a list scan
        listed = f"tasks are {sorted(known)}" if len(known) <= 20 else f"the spec names {len(known):,} tasks"
        seen_pairs: dict[frozenset[str], int] = {}
        for j, rel in enumerate(declared):
            if not (isinstance(rel, (list, tuple)) and len(rel) == 3):
                continue
            a, b = rel[0], rel[1]
            loc = ("relations", "declared", j)
            for end in (a, b):
                if isinstance(end, str) and end not in known:
                    problems.append(
                        _problem("unknown_task", loc, f"relation names unknown task {end!r}; {listed}", end)
                    )
            if isinstance(a, str) and a == b:
                problems.append(_problem("self_relation", loc, f"task {a!r} is related to itself", rel))
            elif isinstance(a, str) and isinstance(b, str):
                pair = frozenset((a, b))
                if pair in seen_pairs:
                    problems.append(
                        _problem(
                            "duplicate_relation",
                            loc,
                            f"relation {a!r}–{b!r} is declared twice (first at relations.declared[{seen_pairs[pair]}])",
                            rel,
                        )
                    )
                else:
                    seen_pairs[pair] = j
    return problems


def _import_checks(data: dict[str, Any]) -> list[InitErrorDetails]:
    """``adapters.imports``: a task entry names a task of the spec, under router ``private``; no slot twice."""
    adapters, tasks, router = data.get("adapters"), data.get("tasks"), data.get("router")
    imports = adapters.get("imports") if isinstance(adapters, dict) else None
    if not isinstance(imports, list):
        return []
    names = {t.get("name") for t in tasks if isinstance(t, dict)} if isinstance(tasks, list) else set()
    kind = router.get("kind", DEFAULT_ROUTER) if isinstance(router, dict) else DEFAULT_ROUTER
    problems, seen = [], {}
    for i, entry in enumerate(imports):
        if not isinstance(entry, dict):
            continue
        slot = ("task", entry["task"]) if entry.get("task") is not None else ("skill", entry.get("skill"))
        loc = ("adapters", "imports", i, slot[0])
        if slot[0] == "task" and isinstance(slot[1], str):
            if slot[1] not in names:
                problems.append(_problem("unknown_task", loc, f"unknown task {slot[1]!r}; tasks are {sorted(names)}"))
            if kind != "private":
                problems.append(
                    _problem(
                        "import_task",
                        loc,
                        f"a task's own adapter needs router.kind 'private'; "
                        f"router {kind!r} mixes skills that tasks share: import it as a skill",
                    )
                )
        if slot in seen and slot[1] is not None:
            problems.append(
                _problem(
                    "duplicate_import",
                    loc,
                    f"{slot[0]} {slot[1]!r} is imported twice (first at adapters.imports[{seen[slot]}])",
                )
            )
        seen.setdefault(slot, i)
    return problems


def _registry_checks(data: dict[str, Any]) -> list[InitErrorDetails]:
    """Check ``router.kind`` / ``tasks[i].data.source`` and their own keys against the registries.

    Done on the raw document, so an unknown kind is reported beside every other problem.
    """
    problems: list[InitErrorDetails] = []
    router = data.get("router", {})
    if isinstance(router, dict):
        problems += _check_kind(ROUTERS, router, router.get("kind", DEFAULT_ROUTER), RouterSpec, ("router",), "kind")
    tasks = data.get("tasks")
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        source = task.get("data") if isinstance(task, dict) else None
        if isinstance(source, dict) and isinstance(source.get("source"), str):
            problems += _check_kind(SOURCES, source, source["source"], DataSpec, ("tasks", i, "data"), "source")
    return problems


def _check_kind(
    registry: Registry[Any], raw: dict[str, Any], kind: Any, section: type[BaseModel], loc: tuple[Any, ...], key: str
) -> list[InitErrorDetails]:
    if not isinstance(kind, str):
        return []  # pydantic reports the type error
    if kind not in registry:
        return [
            _problem(
                "unknown_kind", loc + (key,), f"unknown {registry.what} {kind!r}; choose from {registry.kinds()}", kind
            )
        ]
    own = {k: v for k, v in raw.items() if k not in section.model_fields}
    params = registry.params_of(kind)
    if params is None:
        return [
            _problem("extra_forbidden", loc + (name,), f"{registry.what} {kind!r} takes no parameter {name!r}", value)
            for name, value in own.items()
        ]
    try:
        params.model_validate(own)
    except ValidationError as exc:
        return [{**d, "loc": loc + tuple(d["loc"])} for d in _as_details(exc)]
    return []


def _bind_params(spec: Spec) -> None:
    """Attach each kind's validated parameter model to its section (after every check passed)."""
    sections: list[tuple[Registry[Any], Any, str]] = [(ROUTERS, spec.router, spec.router.kind)]
    sections += [(SOURCES, t.data, t.data.source) for t in spec.tasks if t.data is not None]
    for registry, section, kind in sections:
        params = registry.params_of(kind)
        if params is not None:
            section._params = params.model_validate(section.own_fields())
