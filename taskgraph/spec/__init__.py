"""The spec stage: typed, validated descriptions of a run (YAML or Python)."""

from taskgraph.spec.loader import dump_spec, load_spec, spec_from_dict
from taskgraph.spec.models import (
    MAX_SEED,
    AdaptersSpec,
    DataSpec,
    LearningRates,
    ModelSpec,
    RelationsSpec,
    RouterSpec,
    Spec,
    TaskSpec,
    TrainingSpec,
)
from taskgraph.spec.overrides import spec_with_overrides

__all__ = [
    "MAX_SEED",
    "AdaptersSpec",
    "DataSpec",
    "LearningRates",
    "ModelSpec",
    "RelationsSpec",
    "RouterSpec",
    "Spec",
    "TaskSpec",
    "TrainingSpec",
    "dump_spec",
    "load_spec",
    "spec_from_dict",
    "spec_with_overrides",
]
