"""Few-shot and zero-shot adaptation of a trained run to a new task (``taskgraph adapt``).

Modes (docs/methods.md §1–2): ``full`` (new routing + adapters), ``routing`` (MHR-z: the new task's routing
only), ``mhr-mu`` (MHR-μ: the uniform average of the skills, tuned as one adapter), ``zero-shot`` (graph
router: a new node routed from its relations, no gradient step). In every mode the new task's head is
refit the same way on the same shots with the encoder frozen, so comparisons differ only in routing.
"""

from taskgraph.adapt.attach import AttachResult, attach_run
from taskgraph.adapt.data import infer_num_labels, parse_data_arg, resolve_block
from taskgraph.adapt.head_fit import fit_head, pooled_features
from taskgraph.adapt.lorahub import LoraHubResult, lorahub_search
from taskgraph.adapt.modes import (
    ADAPT_MODES,
    AdaptationPlan,
    check_mode,
    plan_for,
    supported_modes,
    trainable_entries,
)
from taskgraph.adapt.neighbour_routing import nearest_task_logits, neighbour_logits, set_task_logits
from taskgraph.adapt.run import AdaptError, AdaptResult, adapt_run, load_task_splits
from taskgraph.adapt.shots import stratified_shots

__all__ = [  # the stage's public API; the other names imported above are internal
    "ADAPT_MODES",
    "AdaptError",
    "AdaptResult",
    "AdaptationPlan",
    "AttachResult",
    "adapt_run",
    "attach_run",
    "LoraHubResult",
    "check_mode",
    "load_task_splits",
    "lorahub_search",
    "nearest_task_logits",
    "neighbour_logits",
    "parse_data_arg",
    "plan_for",
    "set_task_logits",
    "supported_modes",
]
