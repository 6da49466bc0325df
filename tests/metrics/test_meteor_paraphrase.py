"""METEOR with its paraphrase table pruned to a run's words equals pycocoevalcap's METEOR."""

from __future__ import annotations

import numpy as np
import pytest
from pycocoevalcap.meteor.meteor import Meteor

from metrics import meteor

# Raw text on purpose: METEOR's own normaliser splits apostrophes, hyphens, digit commas,
# decodes entities and multi-dots; the pruning must keep every entry those words can use.
CANDIDATES = [
    "A big polyp was taken out with a cold snare.",
    "The patient's colon didn't show any large lesions... none at all.",
    'Found 1,000 tiny nodules & a 5-mm flat lesion in the caecum (naïve "sessile").',
    "Polypectomy was performed; the lesion was removed entirely.",
    "Полип 5 мм in the rectum, biopsies obtained.",
]
REFERENCES = [
    ["A large polyp was removed using a cold snare.", "Big polyp, removed by snare."],
    ["No big lesions were seen in the patient's colon."],
    ["A flat 5 mm lesion in the cecum and many small nodules; it's naive."],
    ["The lesion was completely resected by polypectomy."],
    ["Rectal polyp of 5 mm, biopsy taken."],
]


def _plain(cands: list[str], refs: list[list[str]]) -> tuple[float, list[float]]:
    meteor = Meteor()
    try:
        return meteor.compute_score(
            {i: r for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)}
        )
    finally:
        meteor.__del__()


@pytest.fixture(scope="module")
def index() -> meteor.ParaphraseIndex:
    found = meteor.paraphrase_index()
    assert found is not None, "the paraphrase index could not be built in the cache folder"
    return found


def test_pruned_table_keeps_the_entries_the_texts_can_use(index: meteor.ParaphraseIndex) -> None:
    runs: set[str] = set()
    for cand, refs in zip(CANDIDATES, REFERENCES, strict=True):
        runs |= meteor._alnum_runs(meteor._meteor_line(cand, refs))
    kept = index.keep(runs)
    assert 0 < len(kept) < len(index.first_len) // 100
    assert np.all(np.diff(kept) > 0)  # table order
    phrases = set()
    for e in kept:
        ids = index.entry_words[index.entry_ptr[e] : index.entry_ptr[e + 1]].tolist()
        split = int(index.first_len[e])
        first = " ".join(index.words[i] for i in ids[:split])
        second = " ".join(index.words[i] for i in ids[split:])
        phrases.add((first, second))
        # Every kept word is made of runs found in the texts (or the normaliser's own).
        for i in ids:
            assert meteor._alnum_runs(index.words[i]) <= runs | meteor._NORMALISER_RUNS
    assert ("big", "large") in phrases or ("large", "big") in phrases
    # An entry is dropped as soon as one of its words cannot occur.
    assert not any("adenoma" in a.split() or "adenoma" in b.split() for a, b in phrases)


def test_meteor_with_the_pruned_table_equals_pycocoevalcap() -> None:
    meteor.shutdown_meteor()
    corpus, per_case = meteor.meteor_scores(CANDIDATES, REFERENCES, workers=1)
    pids = meteor.meteor_process_ids()
    want_corpus, want_cases = _plain(CANDIDATES, REFERENCES)
    assert corpus == pytest.approx(want_corpus, abs=1e-12)
    np.testing.assert_allclose(per_case, want_cases, rtol=0, atol=1e-12)

    # The pruned entries do work: without them (a table pruned to no words) scores change.
    bare = meteor._MeteorWorker(set())
    try:
        corpus_bare, _ = bare.evaluate(bare.stats(list(zip(CANDIDATES, REFERENCES, strict=True))))
    finally:
        bare.close()
    assert corpus_bare < want_corpus - 1e-3

    # Texts within the same words reuse the process; new words start one with their table.
    meteor.meteor_scores(CANDIDATES[:2], REFERENCES[:2], workers=1)
    assert meteor.meteor_process_ids() == pids
    more_c = ["An adenoma was resected en bloc.", *CANDIDATES]
    more_r = [["Adenomatous polyp removed in one piece."], *REFERENCES]
    corpus2, per_case2 = meteor.meteor_scores(more_c, more_r, workers=1)
    assert meteor.meteor_process_ids() != pids
    want_corpus2, want_cases2 = _plain(more_c, more_r)
    assert corpus2 == pytest.approx(want_corpus2, abs=1e-12)
    np.testing.assert_allclose(per_case2, want_cases2, rtol=0, atol=1e-12)
    meteor.shutdown_meteor()
    assert meteor.meteor_process_ids() == []
