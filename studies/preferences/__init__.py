"""Preference pairs harvested from reader-study judgments, in TRL's vision DPO format."""
