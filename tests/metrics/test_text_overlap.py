"""Exact match, token F1 and ROUGE-L on pairs computed by hand."""

from __future__ import annotations

import pytest

from taskgraph.metrics.text_overlap import (
    answer_words,
    exact_match,
    rouge_l,
    text_scores,
    token_f1,
)


def test_answers_are_normalised_as_squad_does() -> None:
    assert answer_words("The Cat, sat!  on a mat.") == ["cat", "sat", "on", "mat"]
    assert answer_words([7, 0, 12]) == ["7", "0", "12"]
    assert exact_match("The cat sat.", "cat  SAT") == 1.0
    assert exact_match("cat sat", "sat cat") == 0.0


def test_token_f1_counts_the_multiset_overlap() -> None:
    # words: cat sat on mat (4) vs cat on hat (3): 2 shared; P = 1/2, R = 2/3, F1 = 4/7
    assert token_f1("the cat sat on the mat", "a cat on a hat") == pytest.approx(4 / 7)
    # x x y vs x y y: min counts x 1, y 1 -> 2 shared; P = R = 2/3
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert token_f1("b c", "c b") == 1.0 and token_f1("b", "c") == 0.0


def test_rouge_l_reads_the_longest_common_subsequence() -> None:
    # LCS of 1 2 3 4 5 and 1 3 5 6 is 1 3 5: P = 3/5, R = 3/4, F = 2/3
    assert rouge_l([1, 2, 3, 4, 5], [1, 3, 5, 6]) == pytest.approx(2 / 3)
    # order matters to ROUGE-L, not to token F1: LCS 1 of 2 words
    assert rouge_l("b c", "c b") == pytest.approx(0.5)
    assert rouge_l("The Cat sat", "cat sat") == 1.0


def test_empty_answers_agree_and_one_empty_answer_scores_zero() -> None:
    for metric in (exact_match, token_f1, rouge_l):
        assert metric([], []) == 1.0 and metric("", "the") == 1.0  # 'the' normalises to nothing
        assert metric([], [3]) == 0.0 and metric("word", "") == 0.0


def test_corpus_scores_are_means_over_examples() -> None:
    scores = text_scores(["cat sat", "b c", ""], ["cat sat", "c b", "dog"])
    assert scores == pytest.approx({"exact_match": 1 / 3, "token_f1": 2 / 3, "rouge_l": 1.5 / 3})
    assert text_scores([], []) == {"exact_match": 0.0, "token_f1": 0.0, "rouge_l": 0.0}
    with pytest.raises(ValueError, match="differ in number: 1 vs 2"):
        text_scores(["a"], ["a", "b"])
