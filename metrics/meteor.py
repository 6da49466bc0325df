"""METEOR 1.5 with pycocoevalcap's settings, in parallel Java workers kept per process.

`shutdown_meteor()` stops the workers (it is also registered at exit). Each worker reads
METEOR's paraphrase table pruned to the entries the run's words can use (same scores, a
start-up of well under a second instead of about ten); the table is indexed once per
machine into the cache folder (`meteor_cache_dir()`).
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics.base import (
    PTB_SIGNATURE,
    CaseTexts,
    MetricOptions,
    MetricScores,
    TextMetric,
    coco_dir,
    library_version,
)

# --- METEOR's paraphrase table, pruned to the words of a run --------------------------
#
# METEOR 1.5 spends almost all of its start-up (about 7-10 s here) reading its 5.3 million
# entry paraphrase table. An entry can only fire when every word of both of its phrases
# occurs in the normalised texts, so a table pruned to the entries whose words can occur
# in the run gives the same alignments and the same scores (the kept entries keep their
# order; the probability line is not read by METEOR). The table is indexed once into a
# cache folder; each run then writes its pruned copy in well under a second.

# METEOR's normaliser (edu.cmu.meteor.util.Normalizer) splits text only at characters
# outside this class, so a word it produces is made of runs of the input's runs.
_METEOR_ALNUM = (
    "0-9A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
    "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f"
)
_ALNUM_RUN = re.compile(f"[{_METEOR_ALNUM}]+")
# Runs the normaliser can create from punctuation (XML entities, its multi-dot markers).
_NORMALISER_RUNS = frozenset({"quot", "apos", "lt", "gt", "amp", "dotmulti", "dotdotmulti"})
_PARAPHRASE_INDEX_VERSION = 3


def _alnum_runs(text: str) -> set[str]:
    """Alphanumeric runs of `text`, lower-cased before and after splitting (superset)."""
    lowered = text.lower()
    return set(_ALNUM_RUN.findall(lowered)) | {r.lower() for r in _ALNUM_RUN.findall(text)}


def meteor_cache_dir() -> Path:
    """Where the paraphrase index lives: MEDVISION_CACHE, else the user cache folder."""
    explicit = os.environ.get("MEDVISION_CACHE")
    if explicit:
        return Path(explicit) / "meteor"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medvision" / "meteor"


def _paraphrase_source() -> Path:
    return coco_dir() / "meteor" / "data" / "paraphrase-en.gz"


def _paraphrase_index_dir() -> Path:
    source = _paraphrase_source()
    stat = source.stat()
    key = f"v{_PARAPHRASE_INDEX_VERSION}-{stat.st_size}-{int(stat.st_mtime)}"
    return meteor_cache_dir() / f"paraphrase-en-{key}"


@dataclass
class ParaphraseIndex:
    """The paraphrase table as arrays: entry -> word ids of both phrases, word -> runs."""

    words: list[str]
    probabilities: np.ndarray  # (entries,) the table's first line per entry
    entry_ptr: np.ndarray  # (entries + 1,) into entry_words
    first_len: np.ndarray  # (entries,) how many of an entry's words form its first phrase
    entry_words: np.ndarray  # word ids, phrase one then phrase two
    runs: list[str]  # distinct alphanumeric runs of the table's words
    word_run_ptr: np.ndarray  # (words + 1,) into word_runs
    word_runs: np.ndarray  # run ids
    # Entries grouped by their rarest word: an entry is only looked at when that word can
    # occur, which leaves a few thousand candidates instead of millions.
    rare_ptr: np.ndarray  # (words + 1,) into rare_entries
    rare_entries: np.ndarray  # entry ids, ascending within each word

    def keep(self, text_runs: set[str]) -> np.ndarray:
        """Entries (ids, in table order) all of whose words can occur in these runs."""
        allowed = text_runs | _NORMALISER_RUNS
        run_bad = np.fromiter((r not in allowed for r in self.runs), bool, len(self.runs))
        word_bad = _segment_any(run_bad[self.word_runs], self.word_run_ptr)
        ok_words = np.flatnonzero(~word_bad)
        starts, ends = self.rare_ptr[ok_words], self.rare_ptr[ok_words + 1]
        if not len(ok_words) or int((ends - starts).sum()) == 0:
            return np.zeros(0, dtype=np.int64)
        candidates = np.sort(
            np.concatenate([self.rare_entries[a:b] for a, b in zip(starts, ends, strict=True)])
        )
        first, last = self.entry_ptr[candidates], self.entry_ptr[candidates + 1]
        lengths = last - first
        offsets = np.repeat(first - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(int(lengths.sum()))
        ptr = np.concatenate(([0], np.cumsum(lengths)))
        bad = _segment_any(word_bad[self.entry_words[positions]], ptr)
        return candidates[~bad].astype(np.int64)

    def write(self, keep: np.ndarray, path: Path) -> int:
        """Write the kept entries in the table's own format (gzip); returns their count."""
        import gzip

        lines = []
        words = self.words
        for e in keep:
            ids = self.entry_words[self.entry_ptr[e] : self.entry_ptr[e + 1]].tolist()
            split = int(self.first_len[e])
            lines.append(repr(float(self.probabilities[e])))
            lines.append(" ".join(words[i] for i in ids[:split]))
            lines.append(" ".join(words[i] for i in ids[split:]))
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
        return len(keep)


def _segment_any(flags: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per segment [ptr[i], ptr[i+1]) of `flags`: is any flag set (False when empty)."""
    cumulative = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return cumulative[ptr[1:]] > cumulative[ptr[:-1]]


def build_paraphrase_index(target: Path | None = None) -> Path:
    """Index METEOR's paraphrase table into the cache (once per machine and version)."""
    import gzip
    import json
    import shutil

    target = target or _paraphrase_index_dir()
    if (target / "done").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        vocab: dict[str, int] = {}
        probabilities: list[float] = []
        entry_words: list[int] = []
        entry_ptr = [0]
        first_len: list[int] = []
        with gzip.open(_paraphrase_source(), "rt", encoding="utf-8") as fh:
            while True:
                prob = fh.readline()
                if not prob:
                    break
                first, second = fh.readline().split(), fh.readline().split()
                probabilities.append(float(prob))
                ids = [vocab.setdefault(w, len(vocab)) for w in first]
                ids.extend(vocab.setdefault(w, len(vocab)) for w in second)
                entry_words.extend(ids)
                entry_ptr.append(len(entry_words))
                first_len.append(len(first))
        words = list(vocab)
        run_ids: dict[str, int] = {}
        word_runs: list[int] = []
        word_run_ptr = [0]
        for word in words:
            word_runs.extend(run_ids.setdefault(r, len(run_ids)) for r in _alnum_runs(word))
            word_run_ptr.append(len(word_runs))
        # The English table has about 43,000 words and 33 million word slots.
        ptr = np.asarray(entry_ptr, dtype=np.int32 if len(entry_words) < 2**31 else np.int64)
        ids = np.asarray(entry_words, dtype=np.uint16 if len(vocab) < 2**16 else np.int32)
        if len(ptr) > 1 and np.any(np.diff(ptr) == 0):
            raise ValueError("paraphrase table has an entry without words")
        # Each entry's rarest word (fewest entries; ties by id), as one packed minimum.
        frequency = np.bincount(ids, minlength=len(vocab)).astype(np.int64)
        packed = (frequency[ids] << 32) | ids.astype(np.int64)
        rarest = (np.minimum.reduceat(packed, ptr[:-1]) & 0xFFFFFFFF) if len(ids) else ids
        order = np.argsort(rarest, kind="stable").astype(np.int32)
        rare_ptr = np.searchsorted(rarest[order], np.arange(len(vocab) + 1))
        np.save(tmp / "rare_ptr.npy", rare_ptr)
        np.save(tmp / "rare_entries.npy", order)
        np.save(tmp / "probabilities.npy", np.asarray(probabilities, dtype=np.float64))
        np.save(tmp / "entry_ptr.npy", ptr)
        np.save(tmp / "first_len.npy", np.asarray(first_len, dtype=np.int16))
        np.save(tmp / "entry_words.npy", ids)
        np.save(tmp / "word_run_ptr.npy", np.asarray(word_run_ptr, dtype=np.int64))
        np.save(tmp / "word_runs.npy", np.asarray(word_runs, dtype=np.int32))
        (tmp / "words.json").write_text(json.dumps(words), encoding="utf-8")
        (tmp / "runs.json").write_text(json.dumps(list(run_ids)), encoding="utf-8")
        (tmp / "done").write_text("ok\n")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / "done").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


_PARAPHRASE_INDEX: ParaphraseIndex | None = None
_PARAPHRASE_LOCK = threading.Lock()


def paraphrase_index(build: bool = True) -> ParaphraseIndex | None:
    """The cached paraphrase index (built on first use); None when it cannot be had."""
    global _PARAPHRASE_INDEX
    import json

    with _PARAPHRASE_LOCK:
        if _PARAPHRASE_INDEX is not None:
            return _PARAPHRASE_INDEX
        try:
            folder = _paraphrase_index_dir()
            if not (folder / "done").exists():
                if not build:
                    return None
                build_paraphrase_index(folder)
            # Memory-mapped: a run reads only the pages of its candidate entries.
            _PARAPHRASE_INDEX = ParaphraseIndex(
                words=json.loads((folder / "words.json").read_text(encoding="utf-8")),
                probabilities=np.load(folder / "probabilities.npy", mmap_mode="r"),
                entry_ptr=np.load(folder / "entry_ptr.npy", mmap_mode="r"),
                first_len=np.load(folder / "first_len.npy", mmap_mode="r"),
                entry_words=np.load(folder / "entry_words.npy", mmap_mode="r"),
                runs=json.loads((folder / "runs.json").read_text(encoding="utf-8")),
                word_run_ptr=np.load(folder / "word_run_ptr.npy"),
                word_runs=np.load(folder / "word_runs.npy"),
                rare_ptr=np.load(folder / "rare_ptr.npy"),
                rare_entries=np.load(folder / "rare_entries.npy", mmap_mode="r"),
            )
        except (OSError, ValueError):
            # An unwritable cache or a broken index: METEOR reads its full table instead.
            return None
        return _PARAPHRASE_INDEX


def _meteor_line(hypothesis: str, refs: Sequence[str]) -> str:
    # As pycocoevalcap's Meteor._stat does.
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(refs), hypothesis)) + "\n"


class _MeteorWorker:
    """One METEOR 1.5 process; with `runs`, its paraphrase table is pruned to them."""

    def __init__(self, runs: set[str] | None = None) -> None:
        directory = coco_dir() / "meteor"
        command = ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en"]
        command.append("-norm")
        self.runs: frozenset[str] | None = None
        self._table_dir: str | None = None
        index = paraphrase_index() if runs is not None else None
        if index is not None and runs is not None:
            self._table_dir = tempfile.mkdtemp(prefix="medvision-meteor-")
            table = Path(self._table_dir) / "paraphrase-en.gz"
            index.write(index.keep(runs), table)
            command += ["-a", str(table)]
            self.runs = frozenset(runs)
        self.proc = subprocess.Popen(
            command,
            cwd=str(directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def covers(self, runs: set[str] | None) -> bool:
        """Can this process score texts with these runs (a full table covers any)?"""
        return self.runs is None or (runs is not None and runs <= self.runs)

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode("utf-8").strip()
        if not answer and self.proc.poll() is not None:
            raise RuntimeError("METEOR process ended unexpectedly")
        return answer

    def _read_lines(self, count: int) -> list[str]:
        """`count` answer lines, read in large blocks.

        One read per line would wait for the interpreter lock once per line while other
        threads compute metrics; a block read takes whatever Java has written so far.
        """
        assert self.proc.stdout is not None
        chunks: list[bytes] = []
        seen = 0
        while seen < count:
            block = self.proc.stdout.read1(1 << 16)
            if not block:
                raise RuntimeError("METEOR process ended unexpectedly")
            chunks.append(block)
            seen += block.count(b"\n")
        lines = b"".join(chunks).decode("utf-8").split("\n")
        if seen > count or lines[-1]:
            raise RuntimeError("METEOR answered more lines than asked for")
        return [line.strip() for line in lines[:count]]

    def stats(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        """SCORE lines, pipelined: a writer thread feeds Java while answers are read."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if not pairs:
            return []
        payload = "".join(_meteor_line(hypothesis, refs) for hypothesis, refs in pairs)
        stdin = self.proc.stdin

        def feed() -> None:
            stdin.write(payload.encode("utf-8"))
            stdin.flush()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = self._read_lines(len(pairs))
        writer.join()
        return out

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        answers = self._read_lines(len(stats) + 1)
        return float(answers[-1]), [float(x) for x in answers[:-1]]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            finally:
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout,):
            if stream:
                stream.close()
        if self._table_dir is not None:
            import shutil

            shutil.rmtree(self._table_dir, ignore_errors=True)
            self._table_dir = None


_METEOR_LOCK = threading.Lock()
_METEOR_WORKERS: list[_MeteorWorker] = []


def _meteor_workers(count: int, runs: set[str] | None = None) -> list[_MeteorWorker]:
    """`count` live workers able to score texts with `runs` (None: the full table)."""
    usable = []
    for worker in _METEOR_WORKERS:
        if worker.proc.poll() is None and worker.covers(runs) and len(usable) < count:
            usable.append(worker)
        else:
            worker.close()
    _METEOR_WORKERS[:] = usable
    if len(_METEOR_WORKERS) < count:
        # Start the rest together: their start-ups overlap.
        with ThreadPoolExecutor(max_workers=count - len(_METEOR_WORKERS)) as executor:
            started = list(
                executor.map(lambda _: _MeteorWorker(runs), range(count - len(_METEOR_WORKERS)))
            )
        _METEOR_WORKERS.extend(started)
    return _METEOR_WORKERS[:count]


def shutdown_meteor() -> None:
    """Stop the METEOR Java workers of this process."""
    with _METEOR_LOCK:
        for worker in _METEOR_WORKERS:
            worker.close()
        _METEOR_WORKERS.clear()


def meteor_process_ids() -> list[int]:
    """Process ids of the running METEOR workers (for checks that none leak)."""
    return [w.proc.pid for w in _METEOR_WORKERS if w.proc.poll() is None]


atexit.register(shutdown_meteor)


def default_meteor_workers() -> int:
    # A JVM keeps about two cores busy (JIT and GC threads) while warming up.
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def meteor_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], workers: int | None = None
) -> tuple[float, np.ndarray]:
    """Corpus and per-case METEOR 1.5 (pycocoevalcap's settings), parallel over workers."""
    if not candidates:
        return float("nan"), np.zeros(0)
    workers = max(1, min(workers or default_meteor_workers(), len(candidates)))
    pairs = list(zip(candidates, references, strict=True))
    bounds = np.linspace(0, len(pairs), workers + 1).astype(int)
    chunks = [pairs[bounds[i] : bounds[i + 1]] for i in range(workers)]
    runs: set[str] = set()
    for hypothesis, refs in pairs:
        runs |= _alnum_runs(_meteor_line(hypothesis, refs))
    with _METEOR_LOCK:
        pool = _meteor_workers(workers, runs)
        with ThreadPoolExecutor(max_workers=workers) as executor:
            parts = list(
                executor.map(lambda wc: wc[0].stats(wc[1]), zip(pool, chunks, strict=True))
            )
        stats = [s for part in parts for s in part]
        # EVAL over the pooled statistics gives pycocoevalcap's corpus score exactly.
        corpus, per_case = pool[0].evaluate(stats)
    return corpus, np.array(per_case)


class Meteor(TextMetric):
    group = "meteor"
    columns = ("METEOR",)
    default = True
    uses_ptb_tokens = True
    runs_alongside = True  # Java workers score while Python computes the rest

    def prepare(self, texts: CaseTexts) -> None:
        # Index the paraphrase table on first use (once per machine; see ParaphraseIndex).
        paraphrase_index()

    def score(self, texts: CaseTexts) -> MetricScores:
        corpus, per_case = meteor_scores(
            texts.tok_candidates, texts.tok_references, texts.options.get(self.group)
        )
        return MetricScores(per_case={"METEOR": per_case}, corpus={"METEOR": corpus})

    def signature(self, column: str, options: MetricOptions) -> str:
        return (
            f"METEOR|pycocoevalcap:{library_version('pycocoevalcap')}|meteor-1.5|lang:en|norm"
            f"|{PTB_SIGNATURE}"
        )
