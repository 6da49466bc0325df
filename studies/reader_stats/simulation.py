"""Simulated reader studies with known truth: the one home of simulated judgments.

`simulate_judgments` draws a simple study from Bradley-Terry strengths (tests, the demo's
analysis examples). `simulate_study` draws a study from a `StudyScenario` with the random
effects a real reader study has (case difficulty, rater leniency, rater x system taste,
each report's own quality, Davidson ties, position bias, unequal rater workloads); one
latent quality per (rater, report) drives both the preference and the Likert scores, so
the pairwise and the Likert analyses of one simulated study describe the same readers.
`bench/coverage.py` uses these to measure the coverage and the type-I error of every
interval and test the workbench shows. Every frame returned is labelled synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from studies.reader_stats.data import prepare_judgments
from studies.readers.form import DEFAULT_FORM


def simulate_judgments(
    strengths: dict[str, float],
    *,
    n_cases: int = 40,
    raters: int = 4,
    raters_per_item: int = 2,
    tie_nu: float = 0.0,
    both_bad_rate: float = 0.0,
    position_bias: float = 0.0,
    rater_noise: float = 0.0,
    gold_per_rater: int = 0,
    duplicates_per_rater: int = 0,
    likert: bool = True,
    criteria: tuple[str, ...] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Synthetic judgments from known Bradley-Terry strengths (log scale), labelled synthetic.

    Likert scores are drawn for each of `criteria` (default: the default form's criteria).
    Every case is read for every pair of systems by `raters_per_item` raters. Ties follow
    Davidson's model with tie parameter `tie_nu` (0: no ties). `position_bias` adds to the
    log-odds of the left report; `rater_noise` is each rater's random shift of the log-odds.
    """
    rng = np.random.default_rng(seed)
    keys = criteria or tuple(c["key"] for c in DEFAULT_FORM["criteria"])
    systems = sorted(strengths)
    rater_names = [f"rater{i + 1:02d}" for i in range(raters)]
    rater_shift = dict(zip(rater_names, rng.normal(0.0, rater_noise, raters), strict=True))
    case_names = [f"case{i + 1:03d}" for i in range(n_cases)]
    case_effect = rng.normal(0.0, 0.4, n_cases)
    quality = {s: strengths[s] for s in systems}
    # One report per (system, case): its length in words.
    lengths = {
        (system, case_index): int(rng.integers(30, 120))
        for system in systems
        for case_index in range(n_cases)
    }
    records: list[dict[str, Any]] = []

    def judge(rater: str, case_index: int, a: str, b: str, left: str) -> dict[str, Any]:
        d = quality[a] - quality[b] + rater_shift[rater]
        d += position_bias if left == "a" else -position_bias
        half = np.exp(d / 2.0)
        denominator = half + 1.0 / half + tie_nu
        p_a, p_tie = half / denominator, tie_nu / denominator
        u = rng.random()
        winner = "a" if u < p_a else ("tie" if u < p_a + p_tie else "b")
        if winner == "tie" and rng.random() < both_bad_rate:
            winner = "both_bad"
        record: dict[str, Any] = {
            "rater": rater,
            "case": case_names[case_index],
            "system_a": a,
            "system_b": b,
            "winner": winner,
            "left": left,
            "time_on_task_s": float(rng.lognormal(np.log(45.0), 0.5)),
            "len_a": lengths[(a, case_index)],
            "len_b": lengths[(b, case_index)],
        }
        if likert:
            for side, system in (("a", a), ("b", b)):
                base = 3.0 + 0.8 * quality[system] + case_effect[case_index]
                for criterion in keys:
                    score = base + rng.normal(0.0, 0.8) + rater_shift[rater] * 0.5
                    record[f"likert_{side}_{criterion}"] = int(np.clip(np.rint(score), 1, 5))
        return record

    for case_index in range(n_cases):
        for i, a in enumerate(systems):
            for b in systems[i + 1 :]:
                chosen = rng.choice(rater_names, size=min(raters_per_item, raters), replace=False)
                for rater in chosen:
                    left = "a" if rng.random() < 0.5 else "b"
                    record = judge(str(rater), case_index, a, b, left)
                    record["item"] = f"{case_names[case_index]}|{a}|{b}"
                    records.append(record)
    for rater in rater_names:
        for g in range(gold_per_rater):
            case_index = int(rng.integers(n_cases))
            a, b = systems[0], systems[-1]
            left = "a" if rng.random() < 0.5 else "b"
            record = judge(rater, case_index, a, b, left)
            # A gold item has an obvious answer (here: the stronger report); careful raters
            # find it nine times out of ten.
            answer = "a" if quality[a] >= quality[b] else "b"
            wrong = "b" if answer == "a" else "a"
            record["winner"] = answer if rng.random() < 0.9 else wrong
            record.update(is_gold=True, item=f"gold{g}", gold_answer=answer)
            records.append(record)
        own = [i for i, r in enumerate(records) if r["rater"] == rater and not r.get("is_gold")]
        for index in rng.choice(own, size=min(duplicates_per_rater, len(own)), replace=False):
            original = records[int(index)]
            again = judge(
                rater,
                case_names.index(original["case"]),
                original["system_a"],
                original["system_b"],
                "b" if original["left"] == "a" else "a",
            )
            again.update(is_duplicate=True, item=original["item"])
            records.append(again)
    frame = pd.DataFrame.from_records(records)
    prepared = prepare_judgments(frame, source="simulated judgments")
    prepared.attrs["synthetic"] = True
    prepared.attrs["source"] = f"simulated (seed {seed})"
    return prepared


@dataclass(frozen=True)
class StudyScenario:
    """A reader-study design and its random effects (standard deviations on the log-odds scale).

    Pairwise: rater j judging systems a, b on case i prefers a with Davidson probabilities
    from d = q(j, i, a) - q(j, i, b) (+ position bias for the left report), where
    q(j, i, s) = strength[s] + rater_system[j, s] + report[i, s].
    Likert: each criterion's score is round(3 + likert_slope * q + case[i] + rater[j] + noise),
    clipped to 1-5.
    """

    name: str
    strengths: dict[str, float]
    n_cases: int = 40
    raters: int = 8
    raters_per_item: int = 3
    case_sd: float = 0.0
    rater_sd: float = 0.0
    rater_system_sd: float = 0.0
    report_sd: float = 0.0
    tie_nu: float = 0.0
    position_bias: float = 0.0
    # 0: raters share the items evenly; u > 0: each rater's share of the items is drawn from
    # Dirichlet(1/u) once per study, so some raters read many items and others few.
    unbalanced: float = 0.0
    likert: bool = True
    criteria: tuple[str, ...] | None = None
    likert_slope: float = 0.8
    likert_noise: float = 0.8
    description: str = field(default="", compare=False)

    def scaled(self, **overrides: Any) -> StudyScenario:
        """The same scenario with some fields changed (e.g. a population-sized study)."""
        return replace(self, **overrides)


def null_version(scenario: StudyScenario) -> StudyScenario:
    """The scenario with every system equally strong: a true null for every comparison."""
    return scenario.scaled(
        name=f"{scenario.name} (null)", strengths=dict.fromkeys(scenario.strengths, 0.0)
    )


def population_version(scenario: StudyScenario) -> StudyScenario:
    """A study so large that a method's point estimate on it is its estimand (the truth
    a 95% interval of the method should cover), over the same distribution of raters."""
    return scenario.scaled(n_cases=4000, raters=400, raters_per_item=1)


def _rater_shares(scenario: StudyScenario, rng: np.random.Generator) -> np.ndarray:
    if scenario.unbalanced <= 0:
        return np.full(scenario.raters, 1.0 / scenario.raters)
    shares = rng.dirichlet(np.full(scenario.raters, 1.0 / scenario.unbalanced))
    # Every rater reads something: a floor keeps each share above a tenth of the mean.
    shares = np.maximum(shares, 0.1 / scenario.raters)
    return shares / shares.sum()


def _choose_raters(rng: np.random.Generator, shares: np.ndarray, k: int) -> np.ndarray:
    return rng.choice(len(shares), size=min(k, len(shares)), replace=False, p=shares)


def simulate_study(scenario: StudyScenario, seed: int) -> pd.DataFrame:
    """One simulated study of `scenario`: prepared judgments, labelled synthetic."""
    rng = np.random.default_rng(seed)
    systems = sorted(scenario.strengths)
    strengths = np.array([scenario.strengths[s] for s in systems])
    keys = scenario.criteria or tuple(c["key"] for c in DEFAULT_FORM["criteria"])
    n_cases, n_raters, n_systems = scenario.n_cases, scenario.raters, len(systems)
    case_level = rng.normal(0.0, scenario.case_sd, n_cases)
    rater_level = rng.normal(0.0, scenario.rater_sd, n_raters)
    rater_system = rng.normal(0.0, scenario.rater_system_sd, (n_raters, n_systems))
    report = rng.normal(0.0, scenario.report_sd, (n_cases, n_systems))
    shares = _rater_shares(scenario, rng)
    rater_names = [f"rater{j + 1:03d}" for j in range(n_raters)]
    case_names = [f"case{i + 1:04d}" for i in range(n_cases)]
    pairs = [(a, b) for a in range(n_systems) for b in range(a + 1, n_systems)]

    cols: dict[str, list[Any]] = {
        "rater": [],
        "case": [],
        "system_a": [],
        "system_b": [],
        "winner": [],
        "left": [],
        "item": [],
    }
    likert_cols: dict[str, list[int]] = {
        f"likert_{side}_{key}": [] for side in ("a", "b") for key in keys
    }
    # Draw everything item by item, vectorised over the readers of an item.
    for i in range(n_cases):
        for a, b in pairs:
            readers = _choose_raters(rng, shares, scenario.raters_per_item)
            q_a = strengths[a] + rater_system[readers, a] + report[i, a]
            q_b = strengths[b] + rater_system[readers, b] + report[i, b]
            left_a = rng.random(len(readers)) < 0.5
            d = q_a - q_b + np.where(left_a, scenario.position_bias, -scenario.position_bias)
            half = np.exp(d / 2.0)
            denominator = half + 1.0 / half + scenario.tie_nu
            p_a, p_tie = half / denominator, scenario.tie_nu / denominator
            u = rng.random(len(readers))
            winners = np.where(u < p_a, "a", np.where(u < p_a + p_tie, "tie", "b"))
            for r, reader in enumerate(readers):
                cols["rater"].append(rater_names[reader])
                cols["case"].append(case_names[i])
                cols["system_a"].append(systems[a])
                cols["system_b"].append(systems[b])
                cols["winner"].append(str(winners[r]))
                cols["left"].append("a" if left_a[r] else "b")
                cols["item"].append(f"{case_names[i]}|{systems[a]}|{systems[b]}")
            if scenario.likert:
                for side, q in (("a", q_a), ("b", q_b)):
                    base = 3.0 + scenario.likert_slope * q + case_level[i] + rater_level[readers]
                    for key in keys:
                        score = base + rng.normal(0.0, scenario.likert_noise, len(readers))
                        likert_cols[f"likert_{side}_{key}"].extend(
                            np.clip(np.rint(score), 1, 5).astype(int).tolist()
                        )
    frame = pd.DataFrame(cols)
    if scenario.likert:
        for name, values in likert_cols.items():
            frame[name] = values
    prepared = prepare_judgments(frame, source="simulated judgments")
    prepared.attrs["synthetic"] = True
    prepared.attrs["source"] = f"simulated: {scenario.name} (seed {seed})"
    return prepared


_THREE = {"A": 0.4, "B": 0.0, "C": -0.4}

# The coverage bench's scenarios (each also run as its null version). Effects are on the
# log-odds scale; 0.5 for a rater x system effect means raters disagree about a system by
# about as much as the systems differ.
SCENARIOS: dict[str, StudyScenario] = {
    s.name: s
    for s in (
        StudyScenario("independent", _THREE, description="no random effects: the textbook case"),
        StudyScenario(
            "case+rater",
            _THREE,
            case_sd=0.6,
            rater_sd=0.5,
            description="case difficulty and rater leniency",
        ),
        StudyScenario(
            "rater x system",
            _THREE,
            case_sd=0.6,
            rater_sd=0.5,
            rater_system_sd=0.5,
            description="raters differ in taste per system",
        ),
        StudyScenario(
            "report effects",
            _THREE,
            case_sd=0.6,
            rater_sd=0.3,
            report_sd=0.7,
            description="each report has its own quality (case x system)",
        ),
        StudyScenario(
            "ties+position",
            _THREE,
            rater_system_sd=0.3,
            report_sd=0.3,
            tie_nu=0.8,
            position_bias=0.3,
            description="Davidson ties and a left-report bias",
        ),
        StudyScenario(
            "unbalanced overlap",
            _THREE,
            rater_sd=0.4,
            rater_system_sd=0.4,
            report_sd=0.4,
            unbalanced=1.0,
            description="raters read very different numbers of items",
        ),
        StudyScenario(
            "small",
            _THREE,
            n_cases=15,
            raters=5,
            raters_per_item=2,
            rater_sd=0.3,
            rater_system_sd=0.3,
            report_sd=0.3,
            description="15 cases, 5 raters, 2 readers per item",
        ),
    )
}
