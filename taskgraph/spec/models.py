"""The typed spec of a run: ``model``, ``adapters``, ``router``, ``relations``, ``tasks``, ``training``.

Every section forbids unknown keys. Fields owned by an extension point (a router's own parameters,
a data source's parameters) are checked against that kind's registered parameter model, so a
spec is validated against exactly the kinds that are installed. :meth:`Spec.model_validate`
reports every problem at once as a pydantic ``ValidationError``; :func:`taskgraph.spec.load_spec`
adds file and line numbers and raises :class:`~taskgraph.errors.SpecError`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from taskgraph.registry import ROUTERS, SOURCES, Registry
from taskgraph.spec.router_kinds import DEFAULT_ROUTER

TaskName = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
MAX_SEED = 2**32 - 1
"""The largest ``training.seed`` (NumPy's legacy seed range; leaves room for seed + offsets in 64 bits)."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def omit_when_default(*names: str) -> Any:
    """A section's wrap serializer that leaves out the fields ``names`` while they hold their defaults.

    A field added after specs were shipped goes in a section as ``_omit_defaults = omit_when_default("field")``:
    a spec that does not set it dumps (and hashes, :func:`taskgraph.train.run_checkpoint.spec_hash`) as before the
    field existed, so runs and checkpoints of older specs still resume.
    """

    def serialize(self: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            fields = type(self).model_fields
            for name in names:
                if getattr(self, name) == fields[name].get_default(call_default_factory=True):
                    data.pop(name, None)
        return data

    return model_serializer(mode="wrap")(serialize)


class ModelSpec(Section):
    """The base transformer.

    Exactly one of ``path`` (a local directory, or ``package:<module>/<subdir>`` for a model that
    ships inside an installed Python package) and ``config`` (a transformers config dict with a
    ``model_type``; random init, for tests and the planted benchmark). ``quantize`` (``none``, ``int8``,
    ``nf4``) quantizes the frozen base at load; a checkpoint then holds no base weights and records it here.
    """

    path: str | None = None
    config: dict[str, Any] | None = None
    tokenizer: str | None = None  # a directory or package: path; default: the model's own
    max_length: int = Field(64, ge=1, le=8192)
    pooling: Literal["mean", "last", "cls"] = "mean"
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"], min_length=1)
    # encoder-decoder: a BERT2BERT EncoderDecoderModel whose encoder and decoder both start from the encoder at
    # ``path`` (for generate tasks when no pretrained decoder is at hand; :mod:`taskgraph.model.lm_base`)
    warm_start: Literal["encoder-decoder"] | None = None
    # the frozen base's linear layers quantized at load, the adapters in full precision on top (QLoRA; see
    # :mod:`taskgraph.model.quantize`): int8 weight-only or 4-bit NormalFloat, both through torchao
    quantize: Literal["none", "int8", "nf4"] = "none"

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.config is None):
            raise ValueError("give exactly one of 'path' (a directory or package:...) and 'config'")
        if self.config is not None and not isinstance(self.config.get("model_type"), str):
            raise ValueError("config needs a 'model_type' string, e.g. 'bert', 'gpt2', 'llama'")
        if self.warm_start is not None and self.path is None:
            raise ValueError(
                "warm_start starts from pretrained weights: give 'path'; a config-built encoder-decoder "
                "is config: {model_type: encoder-decoder, encoder: {...}, decoder: {...}}"
            )
        return self

    _omit_defaults = omit_when_default("warm_start", "quantize")


class ImportSpec(Section):
    """A PEFT LoRA folder an adapter starts from: a ``skill`` slot of every inventory, or a ``task``'s own
    adapter (router ``private``). See :mod:`taskgraph.model.lora_import`; ``path`` is relative to the current folder."""

    path: str = Field(..., min_length=1)
    skill: int | None = Field(None, ge=0)
    task: TaskName | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ImportSpec:
        if (self.skill is None) == (self.task is None):
            raise ValueError(
                "give exactly one of 'skill' (a slot of every layer's inventory, 0..K-1) and 'task' "
                "(the task whose own adapter it becomes; router private)"
            )
        return self


RENAMED_ADAPTER_KEY = "heads"  # adapters.heads (taskgraph 0.1) is adapters.splits


class AdaptersSpec(Section):
    """The LoRA inventory of every adapted layer: K skills of rank r whose input and output dimensions are cut into
    ``splits`` parts (H, MHR's "heads"; 1 for Poly); ``imports``: PEFT LoRA folders some adapters start from.

    ``splits`` was ``heads`` in taskgraph 0.1; that key is still read (the spec loader says it was renamed), so
    that "heads" means only the per-task classification heads.
    """

    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    skills: int = Field(8, ge=1)
    splits: int = Field(1, ge=1)
    linearized: bool = False
    imports: list[ImportSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _renamed_heads(cls, data: Any) -> Any:
        if isinstance(data, dict) and RENAMED_ADAPTER_KEY in data:
            if "splits" in data:
                raise ValueError("give adapters.splits only: adapters.heads is its old name (taskgraph 0.1)")
            data = {("splits" if k == RENAMED_ADAPTER_KEY else k): v for k, v in data.items()}
        return data

    @property
    def heads(self) -> int:
        """The 0.1 name of :attr:`splits`, for code written against it."""
        return self.splits

    _omit_defaults = omit_when_default("imports")


class KindSection(Section):
    """A section owned by an extension point: a registered kind plus that kind's own keys.

    The extra keys are validated by the parameter model the kind registered (see
    :mod:`taskgraph.registry`); the validated model is :attr:`params`.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    _params: Any = PrivateAttr(default=None)

    @property
    def params(self) -> Any:
        """The kind's validated parameter model (None for kinds with no own parameters)."""
        return self._params

    def own_fields(self) -> dict[str, Any]:
        """The keys given beyond the common ones (the kind's own parameters)."""
        return dict(self.model_extra or {})


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


class DataSpec(KindSection):
    """Where a task's examples come from: ``source`` plus that source's own parameters."""

    source: str


OBJECTIVES = ("classify", "generate")
GENERATIVE_KEYS = ("objective", "template", "choices", "max_new_tokens", "stop")  # dumped for generate tasks only


class TaskSpec(Section):
    """One task: a unique name, what it learns (``objective``), its labels, its data, an optional description.

    ``objective: classify`` (the default) is a classifier: ``num_labels`` (>= 2) and a head on the pooled
    hidden state. ``objective: generate`` is text-to-text on a causal or encoder-decoder LM base: the loss is on
    the target tokens, ``generate`` writes completions (:mod:`taskgraph.model.generation`). Its data gives an
    input and a target (``data.target`` names the target column; ``template`` builds the input from the row's
    fields, ``"Question: {question} Answer:"``), or, with ``choices`` (a classification cast as text-to-text),
    a label whose choice is the target; ``num_labels`` then follows ``choices`` (1 without choices).
    ``max_new_tokens`` bounds both a target (a longer one is a data error) and what ``generate`` writes;
    ``stop`` ends a completion at the first of these strings.

    ``family`` (e.g. ``sentiment``, ``topic``) is metadata for evaluation only: tasks of one family
    are the ground truth that ``taskgraph eval`` scores learned relations against. Routers never read it.
    """

    name: TaskName
    objective: Literal["classify", "generate"] = "classify"
    choices: list[Annotated[str, Field(min_length=1, max_length=1024)]] | None = Field(
        None, min_length=2, max_length=1024
    )
    num_labels: int | None = Field(None, validate_default=True)
    data: DataSpec | None = None
    description: str | None = None
    family: str | None = Field(None, min_length=1, max_length=64)
    template: str | None = Field(None, min_length=1, max_length=65_536)
    max_new_tokens: int = Field(32, ge=1, le=4096)
    stop: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list, max_length=32)

    @field_validator("choices")
    @classmethod
    def _distinct_choices(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({v for v in value if value.count(v) > 1})
            raise PydanticCustomError("choices", "{message}", {"message": f"choices must differ; repeated: {repeated}"})
        return value

    @field_validator("num_labels")
    @classmethod
    def _label_count(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "objective" not in info.data:
            return value  # the objective is invalid: reported there
        objective = info.data["objective"]
        if objective == "classify":
            if value is None:
                raise PydanticCustomError("missing", "Field required")
            if value < 2:
                raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 2")
            return value
        choices = info.data.get("choices")
        if objective != "generate" or (choices is None and "choices" not in info.data):
            return value  # objective or choices invalid: reported there
        count = len(choices) if choices is not None else 1
        if value is not None and value != count:
            raise PydanticCustomError(
                "num_labels",
                f"a generate task's num_labels follows its choices ({count}: "
                f"{'the choices' if choices else 'no choices, one label'}); drop num_labels",
            )
        return count

    @field_validator("template")
    @classmethod
    def _template_slots(cls, value: str | None) -> str | None:
        if value is not None:
            from taskgraph.spec.template import template_fields

            try:
                template_fields(value)
            except ValueError as exc:
                raise PydanticCustomError("template", "{message}", {"message": str(exc)}) from None
        return value

    @model_validator(mode="after")
    def _generative_keys(self) -> TaskSpec:
        if self.objective == "classify":
            given = [k for k in GENERATIVE_KEYS[1:] if k in self.model_fields_set]
            if given:
                raise PydanticCustomError(
                    "generative_key",
                    f"{', '.join(given)}: for objective: generate; this task "
                    "classifies (objective: classify, the default)",
                )
        return self

    @model_serializer(mode="wrap")
    def _classify_as_before(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and self.objective == "classify":
            for key in GENERATIVE_KEYS:  # a classify task dumps (and hashes) as before objectives existed
                data.pop(key, None)
        return data

    @property
    def generative(self) -> bool:
        return self.objective == "generate"


class LearningRates(Section):
    """Separate optimizer groups (routing wants a much larger step than the adapters)."""

    adapters: float = Field(1e-3, gt=0)
    router: float = Field(1e-2, gt=0)
    heads: float = Field(1e-3, gt=0)


class TrainingSpec(Section):
    """The multi-task loop."""

    steps: int = Field(600, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: LearningRates = Field(default_factory=LearningRates)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    sampling: Literal["uniform", "proportional", "temperature"] = "uniform"
    sampling_temperature: float = Field(2.0, gt=0)  # for sampling: temperature (p ∝ n^(1/T))
    seed: Seed = 0
    eval_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # data sensitivity (applied to the train split only; seeded by ``seed``; val / test stay whole and clean)
    train_examples: int | None = Field(None, ge=1)  # keep at most this many training examples per task
    label_noise: float = Field(0.0, ge=0, lt=1)  # share of training labels replaced by another label
    # training curves written beside log.jsonl, which stays the source of truth (taskgraph.train.tensorboard)
    report_to: list[Literal["tensorboard"]] = Field(default_factory=list)
    # torch.compile the model's forward in training steps (the same numbers as eager; see taskgraph.train.step)
    compile: bool = False
    # recompute each transformer block's activations in the backward instead of keeping them (the same gradients;
    # see taskgraph.model.grad_checkpointing)
    gradient_checkpointing: bool = False
    # several processes under torchrun: ddp, every process holds the whole model; fsdp, the frozen base's weights
    # sharded across them (see taskgraph.train.fsdp). One process trains unsharded either way
    parallel: Literal["ddp", "fsdp"] = "ddp"

    @model_validator(mode="after")
    def _compile_or_checkpointing(self) -> TrainingSpec:
        if self.compile and self.gradient_checkpointing:
            raise ValueError(
                "compile and gradient_checkpointing: choose one; torch.compile cannot trace a checkpointed block "
                "that recomputes under the batch's routing"
            )
        return self

    _omit_defaults = omit_when_default("compile", "gradient_checkpointing", "parallel")


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
