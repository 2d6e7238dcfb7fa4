"""Evaluating a trained run (``taskgraph eval``): per-task quality, adapter compute, allocation precision,
relation recovery, gradient alignment and the time gating saves."""

from taskgraph.eval.gradients import model_gradient_alignment
from taskgraph.eval.ground_truth import GroundTruth, declared_mask, ground_truth, planted_truth
from taskgraph.eval.oracle import OracleRelearn, oracle_relearn
from taskgraph.eval.run_eval import EVAL_SPLITS, TIMING_ROUNDS, evaluate_run, predict_split, score_split, select_tasks
from taskgraph.eval.structure import learned_relation_matrix
from taskgraph.eval.timing import GatingTiming, all_gates_open, time_gating

__all__ = [  # the stage's public API; the other names imported above are internal
    "EVAL_SPLITS",
    "GatingTiming",
    "GroundTruth",
    "OracleRelearn",
    "evaluate_run",
    "ground_truth",
    "oracle_relearn",
    "planted_truth",
    "score_split",
    "time_gating",
]
