"""The shared PTB pass: pycocoevalcap's Stanford PTB tokenisation of every text of a run
in one Java process, read by BLEU, METEOR, ROUGE-L, CIDEr and SPICE."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from metrics.base import coco_dir

PTB_PUNCTUATION = {
    "''",
    "'",
    "``",
    "`",
    "-LRB-",
    "-RRB-",
    "-LCB-",
    "-RCB-",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
}


# Line ends of str.splitlines and of Java's line reader, each mapped to a space.
_LINE_ENDS = dict.fromkeys(map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"), " ")


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTB tokenisation (lower-cased, punctuation removed), in one call."""
    if not texts:
        return []
    jar = coco_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    # One text per line: every character Java or Python reads as a line end (a generation
    # may hold U+2028 or a form feed) becomes a space, or later texts would shift by a line.
    lines = [t.translate(_LINE_ENDS) for t in texts]
    with tempfile.TemporaryDirectory(prefix="medvision-ptb-") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        proc = subprocess.run(
            [
                "java",
                "-cp",
                str(jar),
                "edu.stanford.nlp.process.PTBTokenizer",
                "-preserveLines",
                "-lowerCase",
                str(path),
            ],
            capture_output=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    out = proc.stdout.decode("utf-8").split("\n")
    if out and out[-1] == "":
        out = out[:-1]  # the newline after the last line
    if len(out) != len(lines):
        raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} texts")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION)
        for line in out[: len(lines)]
    ]
