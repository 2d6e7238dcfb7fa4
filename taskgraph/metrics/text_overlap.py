"""Free-text generation metrics over a predicted and a gold answer: exact match, token F1 and ROUGE-L.

Every metric reads the two answers as sequences of *words*:

- a text is normalised as the SQuAD v1.1 evaluation script does (Rajpurkar et al., 2016): lower-cased,
  punctuation removed, the articles ``a`` / ``an`` / ``the`` dropped, split on white space
  (:func:`answer_words`);
- a sequence of token ids (data without a tokenizer, such as the planted generative universe) is its ids.

Then, for one (prediction, gold) pair:

- exact match: 1 when the word sequences are equal, else 0;
- token F1 (SQuAD): the harmonic mean of precision ``|p ∩ g| / |p|`` and recall ``|p ∩ g| / |g|``, ``∩`` the
  multiset intersection (a word counts as often as it occurs in both);
- ROUGE-L F-measure (Lin, 2004): ``2 · P · R / (P + R)`` with ``P = LCS / |p|`` and ``R = LCS / |g|``, LCS the
  longest common subsequence, computed by the ``rouge-score`` package on the words above.

Two empty answers agree (exact match, F1 and ROUGE-L are 1: the planted universe has empty targets, and writing
nothing is then right); one empty answer against a non-empty one scores 0. Corpus scores are the unweighted
means over the examples (:func:`text_scores`); 0 for no example.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

Answer = str | Sequence[int]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def answer_words(answer: Answer) -> list[str]:
    """The words a metric compares: a normalised text split on white space, or token ids as strings."""
    if isinstance(answer, str):
        text = _ARTICLES.sub(" ", answer.lower().translate(_PUNCTUATION))
        return text.split()
    return [str(int(t)) for t in answer]


def exact_match(prediction: Answer, gold: Answer) -> float:
    """1.0 when the two answers have the same words (:func:`answer_words`), else 0.0."""
    return float(answer_words(prediction) == answer_words(gold))


def token_f1(prediction: Answer, gold: Answer) -> float:
    """SQuAD's token F1 over the multiset of words; 1.0 for two empty answers, 0.0 for one."""
    p, g = answer_words(prediction), answer_words(gold)
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


class _Words:
    """A ``rouge-score`` tokenizer for words already normalised and joined by single spaces."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def rouge_l(prediction: Answer, gold: Answer) -> float:
    """ROUGE-L F-measure of the words (``rouge-score``'s LCS); 1.0 for two empty answers, 0.0 for one."""
    p, g = answer_words(prediction), answer_words(gold)
    if not p or not g:
        return float(p == g)
    from rouge_score.rouge_scorer import RougeScorer

    return float(RougeScorer(["rougeL"], tokenizer=_Words()).score(" ".join(g), " ".join(p))["rougeL"].fmeasure)


def text_scores(predictions: Sequence[Answer], golds: Sequence[Answer]) -> dict[str, float]:
    """``{"exact_match", "token_f1", "rouge_l"}``: each metric's mean over the (prediction, gold) pairs.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(predictions) != len(golds):
        raise ValueError(f"predictions and gold answers differ in number: {len(predictions)} vs {len(golds)}")
    n = max(1, len(golds))
    pairs = list(zip(predictions, golds))
    return {
        "exact_match": sum(exact_match(p, g) for p, g in pairs) / n,
        "token_f1": sum(token_f1(p, g) for p, g in pairs) / n,
        "rouge_l": sum(rouge_l(p, g) for p, g in pairs) / n,
    }
