"""taskgraph bench lm on a tiny GPT-2: every configuration writes the same tokens, the ratios are the paired medians
of the recorded times (no verdicts: those live in benchmarks/targets.py); bad settings are exit 2."""

from __future__ import annotations

import pytest

from taskgraph.bench.lm_speed import LMSettings, render_lm, run_lm_bench
from taskgraph.bench.stats import median, paired_ratios
from taskgraph.cli import main


@pytest.mark.slow
def test_the_lm_bench_times_training_and_mixed_generation_beside_peft() -> None:
    settings = LMSettings(
        model="tiny", tasks=2, batch=2, seq=8, prompts=4, new_tokens=3, routers=("private", "poly"), rounds=2, warmup=0
    )
    result = run_lm_bench(settings)
    times = result["times_s"]
    assert set(times) == {
        "train/private",
        "train/poly",
        "train/peft-lora",
        "generate/private",
        "generate/poly",
        "generate/peft-lora",
        "generate/peft-mixed",
    }
    assert all(len(v) == 2 and min(v) > 0 for v in times.values())
    ratio = result["train"]["poly"]["median"]
    assert ratio == pytest.approx(median(paired_ratios(times["train/poly"], times["train/peft-lora"])))
    assert "targets" not in result and result["bench"] == "lm"
    table = render_lm(result)
    assert "| PEFT mixed (adapter_names) |" in table and "| poly |" in table and "met" not in table


def test_bad_lm_bench_settings_are_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "lm", "--model", "tiny", "--routers", "poly,mlp", "--rounds", "2"]) == 2
    assert (
        "routers ['mlp']: choose from ['shared', 'private', 'poly', 'mhr', 'mhr-mu', 'graph']"
        in capsys.readouterr().err
    )
