"""The model stage: a frozen base transformer + routed adapters + router + per-task heads.

``TaskGraphModel(spec)`` builds everything from a spec; ``save_pretrained`` / ``from_pretrained``
persist it (safetensors + JSON manifest); ``fold`` / ``merge_task`` turn one task into a
plain LoRA or plain merged weights; ``predict`` classifies raw texts.
"""

from taskgraph.data.lm_inputs import causal_rows
from taskgraph.model.base import LoadedBase, load_base, load_tokenizer, resolve_path
from taskgraph.model.batch_forward import forward_batch
from taskgraph.model.checkpoint import base_fingerprint, read_manifest
from taskgraph.model.device import resolve_device
from taskgraph.model.fold import FoldedLoRA, FoldedModule, MergedTaskModel, fold, merge_and_unload, merge_task, unload
from taskgraph.model.heads import TaskHeads, pad_logits
from taskgraph.model.learned import learned_routing
from taskgraph.model.output import TaskGraphOutput
from taskgraph.model.pooling import first_token_pool, last_token_pool, mean_pool, pool
from taskgraph.model.predict import iter_predictions, predict
from taskgraph.model.rundir import find_model_dir
from taskgraph.model.task_features import embed_sequences, example_inputs, fill_task_features
from taskgraph.model.taskgraph_model import TaskGraphModel

__all__ = [  # the stage's public API; the other names imported above are internal
    "FoldedLoRA",
    "FoldedModule",
    "MergedTaskModel",
    "TaskGraphModel",
    "TaskGraphOutput",
    "causal_rows",
    "embed_sequences",
    "example_inputs",
    "fill_task_features",
    "find_model_dir",
    "fold",
    "forward_batch",
    "iter_predictions",
    "learned_routing",
    "load_base",
    "load_tokenizer",
    "merge_task",
    "predict",
    "resolve_device",
    "unload",
]
