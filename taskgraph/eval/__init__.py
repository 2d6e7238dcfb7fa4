"""Evaluating a trained run: per-task quality and adapter compute (``taskgraph eval``)."""

from taskgraph.eval.run_eval import EVAL_SPLITS, evaluate_run, predict_split

__all__ = ["EVAL_SPLITS", "evaluate_run", "predict_split"]
