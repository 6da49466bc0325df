"""The research-use notice that every generated report, table, export, page and adapter card
carries (DESIGN.md: this is research software, not a medical device).

It lives in model/ because generated reports and adapter cards carry it and model/ may not
import studies/; studies/ and workbench/ read it from here.
"""

from __future__ import annotations

# The statement: footers of tables and exports, captions, command-line output, cards.
RESEARCH_NOTICE = "Research software, not a medical device."
# Where a person reads a generated report (the report page and documents) or opens the
# app, the same statement is spelled out with what the reports must not be used for.
RESEARCH_WARNING = (
    "Research software for evaluating AI-written reports. Not a medical device: "
    "not for diagnosis or treatment decisions."
)
