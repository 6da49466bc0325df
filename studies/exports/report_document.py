"""The single-case report: uploads checked and stored by content hash, one system's report,
and the report as a Markdown and a PDF document. Every document carries the research-use
warning (`model.notice.RESEARCH_WARNING`) and says how it was made (system, fingerprint,
prompt, decoding, inputs).
"""

from __future__ import annotations

import importlib.util
import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model.kinds import build_generator, fingerprint, kinds_where
from model.notice import RESEARCH_WARNING
from model.prompts import PromptTemplate
from model.requests import ReportRequest
from model.spec import SystemSpec
from studies.benchmarks.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from studies.store.db import Store
from studies.store.media import sha256_file
from studies.store.settings import Settings
from studies.systems.registry import get_system, prompt_for

# Kinds that can report on an uploaded case (the baselines need a benchmark case).
UPLOAD_KINDS = kinds_where(generates_text=True)
NOT_STATED = "Not stated in the generated text."


class UploadError(ValueError):
    """An upload that cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class SavedUpload:
    """An upload stored under data_dir/uploads as <sha256><suffix>, re-encoded without its
    metadata. The client's file name is not kept: it often holds the patient's name or MRN."""

    path: Path
    kind: str  # image | video
    sha256: str
    size_bytes: int

    @property
    def label(self) -> str:
        """How documents name the upload: by its content hash, never the client's name."""
        return f"{self.kind} {self.sha256[:16]}{self.path.suffix}"


# Pixel modes a PNG holds as they are; other modes (CMYK, YCbCr, P, ...) become RGB(A).
PNG_MODES = ("1", "L", "LA", "I;16", "RGB", "RGBA")


def _clean_image_bytes(name: str, data: bytes) -> bytes:
    """The image decoded in full and written again as a PNG without metadata (EXIF, GPS,
    XMP, ICC, text chunks), turned upright first as its EXIF orientation says; raises
    UploadError for a file that is not a whole image, too small, or a decompression bomb."""
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # a full decode also catches truncated files
                if image.width < 2 or image.height < 2:
                    raise UploadError(
                        f"{name}: the image is only {image.width}x{image.height} pixels"
                    )
                upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(
            f"{name}: the image is too large to decode safely (over "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels; {exc}); downscale it and upload it again"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, UploadError):
            raise
        raise UploadError(f"{name}: not a readable image ({exc})") from None
    if upright.mode not in PNG_MODES:
        alpha = "A" in upright.getbands() or "transparency" in upright.info
        upright = upright.convert("RGBA" if alpha else "RGB")
    # A new image from the pixels alone: nothing of the original's `info` can travel on.
    clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_video_file(name: str, path: Path) -> None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UploadError(f"{name}: the file holds no video stream")
            for _frame in container.decode(container.streams.video[0]):
                return
    except UploadError:
        raise
    except (av.error.FFmpegError, OSError, IndexError, ValueError) as exc:
        raise UploadError(f"{name}: corrupt or unreadable video ({exc})") from None
    raise UploadError(f"{name}: the video has no decodable frame")


def _remux_without_metadata(name: str, source: Path, target: Path) -> None:
    """The video stream alone, copied packet by packet (no re-encoding) into a new mp4: the
    container's and streams' metadata (title, location, creation time, device) and any
    audio (voices in the room) stay behind."""
    import av

    try:
        with av.open(str(source)) as original, av.open(str(target), "w", format="mp4") as out:
            video = original.streams.video[0]
            copy = out.add_stream_from_template(video)
            copy.metadata.clear()
            for packet in original.demux(video):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                out.mux(packet)
    except (av.error.FFmpegError, OSError, IndexError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise UploadError(
            f"{name}: the clip cannot be rewritten without its metadata ({exc}); "
            "convert it to an H.264 mp4 and upload it again"
        ) from None


def _kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    accepted = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
    raise UploadError(f"{name}: unsupported file type {suffix or '(none)'}; accepted: {accepted}")


def save_uploads(files: list[tuple[str, bytes]], settings: Settings) -> list[SavedUpload]:
    """Check every upload, then store them under data_dir/uploads by content hash.

    One or more images, or exactly one video. Raises UploadError, writing nothing, when any
    file is too large, of an unknown type, corrupt, or the mix is wrong.
    """
    if not files:
        raise UploadError("upload one or more images or one video clip")
    limit = settings.max_upload_mb * 1024 * 1024
    kinds = []
    for name, data in files:
        if not data:
            raise UploadError(f"{name}: the file is empty")
        if len(data) > limit:
            raise UploadError(
                f"{name}: {len(data) / 1024 / 1024:.3g} MB is over the upload limit of "
                f"{settings.max_upload_mb:g} MB (setting MEDVISION_MAX_UPLOAD_MB)"
            )
        kinds.append(_kind_of(name))
    if "video" in kinds and len(files) > 1:
        raise UploadError("upload either images or one video clip, not several files with a video")

    folder = settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    # Checked and cleaned files under temporary names: nothing half-checked may appear under
    # a content-hash name, and nothing is kept when one file of the upload fails.
    checked: list[tuple[str, Path]] = []
    scratch: list[Path] = []
    try:
        for (name, data), kind in zip(files, kinds, strict=True):
            suffix = ".png" if kind == "image" else ".mp4"
            handle = tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False)
            temporary = Path(handle.name)
            scratch.append(temporary)
            with handle:
                handle.write(_clean_image_bytes(name, data) if kind == "image" else data)
            if kind == "video":
                # PyAV reads files: the original is checked, then remuxed without metadata.
                _check_video_file(name, temporary)
                original = temporary.with_name(temporary.stem + ".original.mp4")
                temporary.replace(original)
                scratch.append(original)
                _remux_without_metadata(name, original, temporary)
                original.unlink()
            checked.append((kind, temporary))
    except BaseException:
        for temporary in scratch:
            temporary.unlink(missing_ok=True)
        raise
    saved = []
    for kind, temporary in checked:
        digest = sha256_file(temporary)
        size = temporary.stat().st_size
        target = folder / f"{digest}{temporary.suffix}"
        if target.exists():
            temporary.unlink()
        else:
            temporary.replace(target)
        saved.append(SavedUpload(target, kind, digest, size))
    return saved


# --- sections ---------------------------------------------------------------------------

_HEADING = re.compile(
    r"(?im)(?:^|(?<=[\s.*#]))\**\s*(findings?|impressions?|recommendations?|suggestions?|"
    r"treatment suggestions?)\s*\**\s*:"
)


@dataclass
class ReportSections:
    findings: str
    impression: str
    suggestion: str


def split_sections(text: str) -> ReportSections:
    """Findings / impression / suggestion from a generated report; text before the first
    heading, or a report without headings, counts as findings."""
    parts = {"findings": [], "impression": [], "suggestion": []}
    matches = list(_HEADING.finditer(text))
    head = text[: matches[0].start()] if matches else text
    if head.strip():
        parts["findings"].append(head.strip())
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip().strip("*#").strip()
        word = match.group(1).lower()
        section = (
            "findings"
            if word.startswith("finding")
            else "impression"
            if word.startswith("impression")
            else "suggestion"
        )
        if body:
            parts[section].append(body)
    return ReportSections(
        findings="\n".join(parts["findings"]) or NOT_STATED,
        impression="\n".join(parts["impression"]) or NOT_STATED,
        suggestion="\n".join(parts["suggestion"]) or NOT_STATED,
    )


# --- the document ---------------------------------------------------------------------


@dataclass
class ReportDocument:
    """One generated report and everything needed to say how it was made."""

    system: str
    system_version: str
    system_kind: str
    fingerprint: str
    prompt: str  # name v version
    prompt_hash: str
    max_new_tokens: int
    device: str
    latency_s: float
    inputs: list[SavedUpload]
    text: str
    sections: ReportSections
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def provenance(self) -> list[tuple[str, str]]:
        return [
            ("System", f"{self.system} v{self.system_version} ({self.system_kind})"),
            ("System fingerprint", self.fingerprint),
            ("Prompt", f"{self.prompt} (sha256 {self.prompt_hash[:16]})"),
            ("Decoding", f"greedy, at most {self.max_new_tokens} new tokens"),
            ("Device", f"{self.device}, {self.latency_s:.2f} s"),
            (
                "Inputs",
                "; ".join(upload.label for upload in self.inputs),
            ),
            ("Generated", self.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ]

    @property
    def file_stem(self) -> str:
        stamp = self.created_at.strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", self.system)
        return f"report-{safe}-{stamp}"


def generate_upload_report(
    store: Store, system_name: str, uploads: list[SavedUpload]
) -> ReportDocument:
    """Ask one registered system for the report of an uploaded case."""
    info = get_system(store, system_name)
    spec: SystemSpec = info.spec
    if spec.kind not in UPLOAD_KINDS:
        raise UploadError(
            f"system {system_name!r} is a {spec.kind} baseline, which needs a benchmark case; "
            f"pick a model system ({', '.join(UPLOAD_KINDS)})"
        )
    if not uploads:
        raise UploadError("upload one or more images or one video clip")
    is_video = uploads[0].kind == "video"
    prompt: PromptTemplate = prompt_for(spec, "video-report" if is_video else "report")
    request = ReportRequest(
        key=f"upload-{uploads[0].sha256[:12]}",
        images=[] if is_video else [u.path for u in uploads],
        video=uploads[0].path if is_video else None,
    )
    try:
        result = build_generator(spec).generate([request], prompt)[0]
    except (ValueError, RuntimeError, OSError) as exc:
        # A missing model or adapter folder, an offline hub id, a failing remote endpoint.
        raise UploadError(f"system {system_name!r} could not write the report: {exc}") from exc
    return ReportDocument(
        system=info.name,
        system_version=info.version,
        system_kind=info.kind,
        fingerprint=fingerprint(spec, prompt),
        prompt=f"{prompt.name} v{prompt.version}",
        prompt_hash=prompt.hash,
        max_new_tokens=spec.max_new_tokens,
        device=result.device,
        latency_s=result.latency_s,
        inputs=list(uploads),
        text=result.text,
        sections=split_sections(result.text),
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """Text with control characters (a small model may emit them) shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


def build_markdown(document: ReportDocument) -> str:
    longest = max((len(run) for run in re.findall(r"`+", document.text)), default=0)
    fence = "`" * max(3, longest + 1)
    lines = [
        "# AI-generated colonoscopy report",
        "",
        f"> **{RESEARCH_WARNING}**",
        "",
        "## Findings",
        "",
        document.sections.findings,
        "",
        "## Impression",
        "",
        document.sections.impression,
        "",
        "## Suggestion",
        "",
        document.sections.suggestion,
        "",
        "## How this report was made",
        "",
    ]
    lines += [f"- **{label}:** {value}" for label, value in document.provenance]
    lines += ["", "## Generated text (unedited)", "", f"{fence}text", document.text, fence, ""]
    lines += [f"*{RESEARCH_WARNING}*", ""]
    return printable("\n".join(lines))


def _font_files() -> tuple[Path, Path] | None:
    """DejaVu Sans (regular, bold): from matplotlib's data, else the system fonts."""
    candidates = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    candidates.append(Path("/usr/share/fonts/truetype/dejavu"))
    for folder in candidates:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def build_pdf(document: ReportDocument) -> bytes:
    """The report as a PDF; the research-use warning is on every page (header and footer)."""
    from fpdf import FPDF

    fonts = _font_files()

    class _ReportPDF(FPDF):
        def header(self) -> None:
            self.set_font(family, "B", 8)
            self.set_text_color(150, 0, 0)
            self.multi_cell(0, 4, clean(RESEARCH_WARNING), new_x="LMARGIN", new_y="NEXT")
            self.set_text_color(0, 0, 0)
            self.ln(2)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(family, "", 7)
            self.cell(0, 5, clean(f"{RESEARCH_WARNING}  Page {self.page_no()}"), align="C")

    pdf = _ReportPDF(format="A4")
    if fonts:
        pdf.add_font("DejaVu", "", str(fonts[0]))
        pdf.add_font("DejaVu", "B", str(fonts[1]))
        family = "DejaVu"

        def clean(text: str) -> str:
            return printable(text)
    else:  # the PDF core fonts only know Latin-1
        family = "Helvetica"

        def clean(text: str) -> str:
            return printable(text).encode("latin-1", "replace").decode("latin-1")

    pdf.set_title("AI-generated colonoscopy report (research use only)")
    pdf.set_subject(RESEARCH_WARNING)
    pdf.set_creator("Med-Vision Workbench")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(family, "B", 16)
    pdf.multi_cell(0, 9, "AI-generated colonoscopy report", new_x="LMARGIN", new_y="NEXT")
    for title, body in (
        ("Findings", document.sections.findings),
        ("Impression", document.sections.impression),
        ("Suggestion", document.sections.suggestion),
    ):
        pdf.ln(3)
        pdf.set_font(family, "B", 12)
        pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 10)
        pdf.multi_cell(0, 5, clean(body), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, "B", 11)
    pdf.multi_cell(0, 6, "How this report was made", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 8)
    for label, value in document.provenance:
        pdf.multi_cell(0, 4, clean(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
