"""Versioned prompt templates; a template's hash is part of a system's fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Re-exported: prompts, generated reports and adapter cards carry the notice (model.notice).
from model.notice import RESEARCH_NOTICE as RESEARCH_NOTICE


@dataclass(frozen=True)
class PromptTemplate:
    """A system message and a user message; `user` may contain `{question}`."""

    name: str
    version: str
    system: str
    user: str

    @property
    def hash(self) -> str:
        payload = json.dumps(
            {"name": self.name, "version": self.version, "system": self.system, "user": self.user},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def user_text(self, question: str | None = None) -> str:
        """The user message with the question filled in (an empty question when none)."""
        if "{question}" in self.user:
            return self.user.replace("{question}", (question or "").strip())
        return self.user


# The "AI medical consultation report" of the original Med-Vision system: findings,
# impression, recommendation.
COLONOSCOPY_REPORT = PromptTemplate(
    name="colonoscopy-report",
    version="1",
    system=(
        "You are an experienced gastroenterologist. You write concise, structured colonoscopy "
        "reports from endoscopic images or video clips. Describe only what is visible; say so "
        "when something cannot be judged."
    ),
    user=(
        "Write the colonoscopy report for this case with exactly three sections.\n"
        "Findings: for each lesion give location (colon segment), estimated size in mm, "
        "morphology (Paris classification), surface pattern (NICE and JNET type) and the "
        "suspected histology; otherwise describe the mucosa.\n"
        "Impression: the overall diagnosis in one or two sentences.\n"
        "Recommendation: management or treatment suggestion (e.g. resection technique, "
        "biopsy, surveillance interval)."
    ),
)

KVASIR_VQA = PromptTemplate(
    name="kvasir-vqa",
    version="1",
    system=(
        "You are an experienced gastroenterologist answering questions about endoscopic "
        "images. Answer briefly and precisely, and explain the visual evidence in one sentence."
    ),
    user="Question: {question}\nAnswer:",
)

CXR_FINDINGS = PromptTemplate(
    name="cxr-findings",
    version="1",
    system=(
        "You are an experienced radiologist writing chest X-ray reports. Describe only what is "
        "visible on the radiograph."
    ),
    user=(
        "Write the findings section of the radiology report for this chest X-ray: heart size, "
        "mediastinum, lungs, pleura, bones and any device; then a one-sentence impression."
    ),
)

PROMPTS: dict[str, PromptTemplate] = {
    p.name: p for p in (COLONOSCOPY_REPORT, KVASIR_VQA, CXR_FINDINGS)
}

TASK_PROMPTS: dict[str, str] = {
    "report": "colonoscopy-report",
    "video-report": "colonoscopy-report",
    "vqa": "kvasir-vqa",
    "cxr-report": "cxr-findings",
}


def prompt_for_task(task: str) -> PromptTemplate:
    """The default prompt of a benchmark task ("report", "vqa", "cxr-report", "video-report")."""
    try:
        return PROMPTS[TASK_PROMPTS[task]]
    except KeyError:
        known = ", ".join(sorted(TASK_PROMPTS))
        raise ValueError(f"unknown benchmark task {task!r}; expected one of: {known}") from None


def get_prompt(name: str) -> PromptTemplate:
    """A prompt by its PROMPTS key, with a clear message for an unknown name."""
    try:
        return PROMPTS[name]
    except KeyError:
        known = ", ".join(sorted(PROMPTS))
        raise ValueError(f"unknown prompt {name!r}; expected one of: {known}") from None
