"""Each merge method's math on hand-made tensors, against brute-force references written with loops."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.testing import assert_close

from taskgraph.cli.merge import METHODS
from taskgraph.merge import LowRank, MergeError, MergeParams, parse_params
from taskgraph.merge.average import Average
from taskgraph.merge.dare import dare, drop_and_rescale
from taskgraph.merge.dare_ties import dare_ties
from taskgraph.merge.lowrank import concat, factorize, truncate
from taskgraph.merge.subspace import SubspaceParams, shared_bases, subspace_merge
from taskgraph.merge.task_arithmetic import TaskArithmetic
from taskgraph.merge.ties import TiesParams, disjoint_mean, elect_sign, ties, trim_magnitude
from taskgraph.registry import MERGES


def updates(t: int = 3, r: int = 2, d_out: int = 6, d_in: int = 5, seed: int = 0) -> list[LowRank]:
    g = torch.Generator().manual_seed(seed)
    return [
        LowRank(
            torch.randn(r, d_in, generator=g, dtype=torch.float64),
            torch.randn(d_out, r, generator=g, dtype=torch.float64),
        )
        for _ in range(t)
    ]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- brute-force references
def ties_reference(deltas: torch.Tensor, density: float, lam: float) -> torch.Tensor:
    """TIES entry by entry: sort each task's magnitudes, keep the top k, vote, average the agreeing."""
    t, shape = deltas.shape[0], deltas.shape[1:]
    flat = deltas.reshape(t, -1).tolist()
    n = len(flat[0])
    k = max(1, round(density * n))
    kept = []
    for row in flat:
        order = sorted(range(n), key=lambda i: -abs(row[i]))[:k]
        kept.append([row[i] if i in order else 0.0 for i in range(n)])
    out = []
    for i in range(n):
        total = sum(kept[j][i] for j in range(t))
        sign = (total > 0) - (total < 0)
        agree = [kept[j][i] for j in range(t) if kept[j][i] != 0 and ((kept[j][i] > 0) - (kept[j][i] < 0)) == sign]
        out.append(lam * sum(agree) / len(agree) if agree else 0.0)
    return torch.tensor(out, dtype=deltas.dtype).reshape(shape)


def dare_reference(deltas: torch.Tensor, p: float, lam: float, seed: int, then_ties: bool) -> torch.Tensor:
    """DARE entry by entry from the same uniform draws: keep where u ≥ p, rescale, then add (or vote)."""
    u = torch.rand(deltas.shape, generator=gen(seed)).reshape(deltas.shape[0], -1).tolist()
    flat = deltas.reshape(deltas.shape[0], -1).tolist()
    dropped = [[x / (1 - p) if ui >= p else 0.0 for x, ui in zip(row, urow)] for row, urow in zip(flat, u)]
    out = []
    for i in range(len(flat[0])):
        column = [row[i] for row in dropped]
        if not then_ties:
            out.append(lam * sum(column))
            continue
        total = sum(column)
        sign = (total > 0) - (total < 0)
        agree = [x for x in column if x != 0 and ((x > 0) - (x < 0)) == sign]
        out.append(lam * sum(agree) / len(agree) if agree else 0.0)
    return torch.tensor(out, dtype=deltas.dtype).reshape(deltas.shape[1:])


# ----------------------------------------------------------------------------- task arithmetic, average
def test_task_arithmetic_lambda_one_on_disjoint_tasks_is_the_sum_of_updates():
    """Three tasks touching disjoint blocks of W: λ = 1 gives every task its own update back, exactly."""
    g = gen(1)
    parts = []
    for t in range(3):  # task t writes rows 2t..2t+1 only
        b = torch.zeros(6, 2, dtype=torch.float64)
        b[2 * t : 2 * t + 2] = torch.randn(2, 2, generator=g, dtype=torch.float64)
        parts.append(LowRank(torch.randn(2, 8, generator=g, dtype=torch.float64), b))
    merged = TaskArithmetic().merge(parts, {"lambda": 1.0}, rank=None, generator=gen())
    total = sum(u.dense() for u in parts)
    assert_close(merged.dense(), total, rtol=0, atol=1e-12)
    for t, u in enumerate(parts):  # each task's block is its own update
        assert_close(merged.dense()[2 * t : 2 * t + 2], u.dense()[2 * t : 2 * t + 2], rtol=0, atol=1e-12)
    assert merged.rank == 6  # exact at Σ r_t (disjoint rows), no dense SVD
    dense_ties = ties(torch.stack([u.dense() for u in parts]), density=1.0, lam=1.0)
    assert_close(dense_ties, total, rtol=0, atol=1e-12)  # disjoint supports: nothing to trim or vote on


def test_task_arithmetic_scales_and_truncates_and_average_is_lambda_one_over_t():
    ups = updates()
    total = sum(u.dense() for u in ups)
    assert_close(TaskArithmetic().merge(ups, {"lambda": 0.3}, rank=None, generator=gen()).dense(), 0.3 * total)
    assert_close(Average().merge(ups, {}, rank=None, generator=gen()).dense(), total / 3)
    cut = TaskArithmetic().merge(ups, {"lambda": 1.0}, rank=2, generator=gen())
    u, s, vh = torch.linalg.svd(total)
    assert cut.rank == 2
    assert_close(cut.dense(), (u[:, :2] * s[:2]) @ vh[:2])  # merge-then-SVD: the best rank-2 approximation


# ----------------------------------------------------------------------------- TIES
@pytest.mark.parametrize("density", [0.2, 0.5, 1.0])
def test_ties_equals_the_brute_force_reference(density):
    deltas = torch.randn(4, 5, 6, generator=gen(2), dtype=torch.float64)
    deltas[1, 0] = -deltas[0, 0]  # exact cancellations: a zero vote
    assert_close(ties(deltas, density, 0.7), ties_reference(deltas, density, 0.7), rtol=0, atol=1e-12)


def test_ties_steps():
    deltas = torch.tensor([[3.0, -1.0, 0.5, -4.0], [-2.0, 2.0, 0.1, -1.0], [1.0, 0.2, -0.3, 5.0]])
    trimmed = trim_magnitude(deltas, 0.5)  # the top 2 of 4 per task
    assert torch.equal(trimmed, torch.tensor([[3.0, 0, 0, -4.0], [-2.0, 2.0, 0, 0], [1.0, 0, 0, 5.0]]))
    sign = elect_sign(trimmed)
    assert torch.equal(sign, torch.tensor([1.0, 1.0, 0.0, 1.0]))
    assert torch.equal(disjoint_mean(trimmed, sign), torch.tensor([2.0, 2.0, 0.0, 5.0]))


# ----------------------------------------------------------------------------- DARE
@pytest.mark.parametrize("then_ties", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_dare_and_dare_ties_equal_the_brute_force_reference(p, then_ties):
    deltas = torch.randn(3, 4, 7, generator=gen(3), dtype=torch.float64)
    got = (dare_ties if then_ties else dare)(deltas, p, 0.5, gen(11))
    assert_close(got, dare_reference(deltas, p, 0.5, 11, then_ties), rtol=0, atol=1e-12)


def test_dare_keeps_the_expectation_and_drops_the_share_p():
    deltas = torch.randn(2, 100, 100, generator=gen(4), dtype=torch.float64)
    dropped = drop_and_rescale(deltas, 0.6, gen(5))
    kept = dropped != 0
    assert abs(kept.double().mean().item() - 0.4) < 0.02
    assert_close(dropped[kept], deltas[kept] / 0.4)
    mean = torch.stack([drop_and_rescale(deltas, 0.6, gen(s)) for s in range(400)]).mean(0)
    assert (mean - deltas).abs().mean() < 0.1 * deltas.abs().mean()  # E[m ⊙ Δ / (1 − p)] = Δ
    assert torch.equal(drop_and_rescale(deltas, 0.6, gen(5)), dropped)  # seeded: reproducible


# ----------------------------------------------------------------------------- the rank-r shared subspace
def test_subspace_merge_is_exact_when_the_ranks_fit():
    ups = updates(t=3, r=2, d_out=9, d_in=8)
    merged = subspace_merge(ups, rank=6, combine="sum", lam=0.4)
    assert merged.rank == 6
    assert_close(merged.dense(), 0.4 * sum(u.dense() for u in ups), rtol=0, atol=1e-10)


def test_subspace_merge_is_exact_when_the_factors_bases_differ_in_size():
    """d_out = 3 < Σ r_t = 6 < d_in: the coordinates are [3, 6]; with r ≥ both the merge is still exact."""
    ups = updates(t=3, r=2, d_out=3, d_in=10, seed=8)
    qb, qa, coords = shared_bases(ups)
    assert coords.shape == (3, 3, 6)
    merged = subspace_merge(ups, rank=6, combine="sum", lam=1.0)
    assert_close(merged.dense(), sum(u.dense() for u in ups), rtol=0, atol=1e-10)


def test_subspace_coordinates_are_exact_and_the_merge_is_one_rank_r_lora():
    ups = updates(t=4, r=2, d_out=10, d_in=9, seed=5)
    qb, qa, coords = shared_bases(ups)
    for u, m in zip(ups, coords):
        assert_close(qb @ m @ qa.T, u.dense(), rtol=0, atol=1e-10)  # ΔW_t = Q_B M_t Q_Aᵀ
    merged = subspace_merge(ups, rank=3, combine="sum", lam=1.0)
    assert merged.rank == 3 and torch.linalg.matrix_rank(merged.dense()) == 3
    # Eckart–Young: merge-then-SVD is the best rank-3 approximation of the sum; the subspace merge is
    # another rank-3 matrix (chosen for every task's update), so it cannot be closer to the sum
    total = sum(u.dense() for u in ups)
    svd = truncate(concat(ups), 3)
    assert (svd.dense() - total).norm() <= (merged.dense() - total).norm() + 1e-9
    # a task whose update is all inside the subspace keeps it exactly
    one = subspace_merge([ups[0], LowRank(ups[0].A * 0, ups[0].B * 0)], rank=2, combine="sum", lam=1.0)
    assert_close(one.dense(), ups[0].dense(), rtol=0, atol=1e-10)


def test_subspace_ties_combines_the_coordinates_with_ties():
    ups = updates(t=3, r=2, d_out=7, d_in=7, seed=6)
    qb, qa, coords = shared_bases(ups)
    got = subspace_merge(ups, rank=6, combine="ties", lam=1.0, density=0.5)
    assert got.rank == 6
    # full rank: U, V are rotations of the coordinates; the result is TIES on the rotated coordinates
    mats = coords.permute(1, 0, 2).reshape(6, -1)
    uu = torch.linalg.svd(mats, full_matrices=False)[0]
    vv = torch.linalg.svd(coords.reshape(-1, 6), full_matrices=False)[2].T
    small = uu.T @ coords @ vv
    assert_close(got.dense(), qb @ uu @ ties(small, 0.5, 1.0) @ (qa @ vv).T, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- factors
def test_factorize_keeps_the_exact_rank_and_truncate_the_best_approximation():
    ups = updates(t=2, r=2, d_out=8, d_in=7)
    total = sum(u.dense() for u in ups)
    exact = factorize(total)
    assert exact.rank == 4
    assert_close(exact.dense(), total, rtol=0, atol=1e-10)
    assert factorize(torch.zeros(3, 4)).rank == 1 and factorize(torch.zeros(3, 4)).dense().abs().max() == 0
    assert_close(truncate(concat(ups), 2).dense(), factorize(total, 2).dense(), rtol=0, atol=1e-10)
    padded = exact.padded(6)
    assert padded.rank == 6 and torch.equal(padded.dense(), exact.dense())


# ----------------------------------------------------------------------------- parameters and registry
def test_every_method_is_registered_with_its_parameters_and_the_cli_lists_them():
    assert tuple(MERGES.kinds()) == METHODS
    for kind in MERGES.kinds():
        entry = MERGES.get(kind)
        assert issubclass(entry.params, MergeParams) and entry.obj.description


def test_grids_are_the_product_of_the_auto_values():
    params = parse_params("ties", TiesParams, {"lambda_grid": [0.5, 1.0], "density": "auto"})
    assert params.grid() == [
        {"lambda": a, "density": d} for a, d in itertools.product([0.5, 1.0], [0.2, 0.5, 0.8, 1.0])
    ]
    fixed = parse_params("ties", TiesParams, {"lambda": "0.5", "density": 0.2, "rank": 4})
    assert fixed.grid() == [{}] and fixed.values({}) == {"lambda": 0.5, "density": 0.2} and fixed.rank == 4
    assert SubspaceParams(lambda_grid=(1.0, 2.0)).grid() == [{"lambda": 1.0}, {"lambda": 2.0}]  # density is TIES'


def test_bad_parameters_are_reported_together():
    with pytest.raises(MergeError) as err:
        parse_params("ties", TiesParams, {"lambda": -1, "density": 1.5, "p": 0.3, "rank": 0, "lambda_grid": []})
    text = str(err.value)
    for needle in (
        "lambda: -1 lies outside [0, 100]",
        "density: 1.5 lies outside (0, 1]",
        "rank:",
        "lambda_grid",
        "takes no parameter 'p'",
    ):
        assert needle in text, text
