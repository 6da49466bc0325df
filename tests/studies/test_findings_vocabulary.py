"""One findings vocabulary and one size-class rule, read by the metric, loaders and generators."""

from __future__ import annotations

import numpy as np
import pytest
from support import reader_world

from metrics.clinical import extract, scoring, vocab
from metrics.clinical import size_class as exported_size_class
from studies.benchmarks import findings
from studies.demo import synthetic


def test_the_extractor_the_loaders_and_the_generator_share_one_size_class() -> None:
    rule = vocab.size_class
    assert extract.size_class is rule
    assert scoring.size_class is rule
    assert findings.size_class is rule
    assert synthetic.size_class is rule
    assert exported_size_class is rule
    # The boundaries the rule draws, as a loader and the extractor apply them.
    boundaries = {1: "diminutive", 5: "diminutive", 6: "small", 9: "small", 10: "large"}
    for size_mm, expected in boundaries.items():
        assert findings.make_lesion(size_mm=size_mm)["size_class"] == expected
        read = extract.extract_findings(f"A {size_mm} mm polyp in the cecum.")
        assert read["lesions"][0]["size_class"] == expected


def test_loaders_name_vocabulary_values_under_their_own_names() -> None:
    # No second name for a vocabulary (PARIS = PARIS_BASE, ...) to drift from the first.
    for alias in ("PARIS", "LST", "NICE", "JNET", "KUDO", "HISTOLOGY", "RESECTION"):
        assert not hasattr(findings, alias), alias
    assert findings.LESION_FIELDS is vocab.LESION_FIELDS
    with pytest.raises(ValueError, match="use one of 0-Ip, 0-Isp"):
        findings.normalise_paris("0-IV")


def test_the_synthetic_generator_draws_only_vocabulary_values() -> None:
    rng = np.random.default_rng(5)
    lesions = [lesion for _ in range(400) for lesion in synthetic.draw_truth(rng).lesions]
    assert {lesion.location for lesion in lesions} == set(vocab.LOCATIONS)
    assert {lesion.histology for lesion in lesions} <= set(vocab.HISTOLOGIES)
    assert {lesion.resection for lesion in lesions} <= set(vocab.RESECTIONS)
    assert {vocab.size_class(lesion.size_mm) for lesion in lesions} == set(vocab.SIZE_CLASSES)


def test_the_reader_world_speaks_the_same_vocabulary() -> None:
    assert set(reader_world.HISTOLOGY) <= set(vocab.HISTOLOGIES)
    # Its reports name sites in words; each reads back as a vocabulary location.
    sites = [findings.normalise_location(phrase) for phrase in reader_world.LOCATIONS]
    assert sites == ["cecum", "ascending", "transverse", "sigmoid", "rectum"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.subset(vocab.HISTOLOGIES, ["adenoma", "polyp"])
    with pytest.raises(ValueError, match="unknown location 'colon'"):
        vocab.location_phrase("colon")
