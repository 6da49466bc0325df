"""Loading Qwen-VL models (with an optional LoRA adapter) and batched greedy generation.

One loaded model serves both the fine-tuned system (adapter on) and the base system (adapter
off, inside peft's `disable_adapter()`), through a process-wide cache: no second copy of the
weights. Generation is greedy (no sampling, one beam), left padded, in batches whose order is
kept; on CUDA out-of-memory a batch is halved and retried (the CPU path runs the same code).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from model.media import PreparedRequest, prepare_request, processor_size
from model.prompts import PromptTemplate
from model.quiet import quiet_libraries
from model.requests import ReportRequest, ReportResult
from model.spec import SystemSpec, default_dtype_name, resolve_device

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA (or other accelerator) out-of-memory error."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def run_in_batches(
    items: Sequence[T],
    batch_size: int,
    run_batch: Callable[[list[T]], list[R]],
    progress: Callable[[int], None] | None = None,
    on_out_of_memory: Callable[[int], None] | None = None,
) -> list[R]:
    """Run `run_batch` over consecutive batches, keeping order.

    An out-of-memory error halves the batch size and retries the same items; a single item that
    still does not fit raises. `progress(n_done)` is called after each finished batch.
    """
    results: list[R] = []
    size = max(1, batch_size)
    start = 0
    while start < len(items):
        batch = list(items[start : start + size])
        try:
            out = run_batch(batch)
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
            size = max(1, size // 2)
            log.warning("out of memory at batch size %d; retrying at %d", len(batch), size)
            _free_accelerator_memory()
            if on_out_of_memory is not None:
                on_out_of_memory(size)
            continue
        if len(out) != len(batch):
            raise RuntimeError(f"a batch of {len(batch)} produced {len(out)} results")
        results.extend(out)
        start += len(batch)
        if progress is not None:
            progress(len(results))
    return results


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadedVLM:
    model: Any  # a transformers model, or a peft PeftModel around one
    processor: Any
    device: str
    dtype: str
    has_adapter: bool  # a live (unmerged) peft adapter that can be disabled
    model_type: str
    lock: threading.Lock


_MODEL_CACHE: dict[tuple, LoadedVLM] = {}
_CACHE_LOCK = threading.Lock()


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_vlm(
    model: str,
    adapter: str | None = None,
    merge_adapter: bool = False,
    device: str | None = None,
    dtype: str | None = None,
) -> LoadedVLM:
    """Load (once per process) a Qwen-VL model, its processor and an optional LoRA adapter."""
    device = resolve_device(device)
    dtype = dtype or default_dtype_name(device)
    key = (str(model), str(adapter) if adapter else None, bool(merge_adapter), device, dtype)
    with _CACHE_LOCK:
        if key in _MODEL_CACHE:
            return _MODEL_CACHE[key]
        loaded = _load_uncached(model, adapter, merge_adapter, device, dtype)
        _MODEL_CACHE[key] = loaded
        return loaded


def adopt_model(name: str, model: Any, processor: Any, device: str, dtype: str) -> LoadedVLM:
    """Register an in-memory model under `name`, so a spec with `model=name` (and no adapter)
    uses it instead of loading from disk: benchmarks of random-weight architectures."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    loaded = LoadedVLM(
        model=model.to(device).eval(),
        processor=processor,
        device=device,
        dtype=dtype,
        has_adapter=False,
        model_type=str(getattr(model.config, "model_type", "")),
        lock=threading.Lock(),
    )
    with _CACHE_LOCK:
        _MODEL_CACHE[(name, None, False, device, dtype)] = loaded
    return loaded


def clear_model_cache() -> None:
    """Forget every loaded model (frees memory once no generator holds one)."""
    with _CACHE_LOCK:
        _MODEL_CACHE.clear()
    _free_accelerator_memory()


def _load_uncached(
    model: str, adapter: str | None, merge_adapter: bool, device: str, dtype: str
) -> LoadedVLM:
    import transformers  # noqa: F401 - imported before quiet_libraries() so it is quietened

    # Loading prints transformers' weight bars and FutureWarnings about transformers' own
    # internals (peft asks is_gradient_checkpointing): nothing to act on, and it buries the
    # run's progress lines.
    with quiet_libraries():
        return _load_quietly(model, adapter, merge_adapter, device, dtype)


def _load_quietly(
    model: str, adapter: str | None, merge_adapter: bool, device: str, dtype: str
) -> LoadedVLM:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(model)
        network = AutoModelForImageTextToText.from_pretrained(model, dtype=_torch_dtype(dtype))
    except OSError as exc:
        raise ValueError(f"cannot load model {model!r}: {exc}") from exc
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"  # decoder-only batching needs the prompt flush right
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_type = str(getattr(network.config, "model_type", ""))
    has_adapter = False
    if adapter:
        from peft import PeftModel

        adapter_path = Path(adapter)
        if not (adapter_path / "adapter_config.json").is_file():
            raise ValueError(f"adapter folder {adapter} has no adapter_config.json")
        network = PeftModel.from_pretrained(network, str(adapter_path))
        if merge_adapter:
            network = network.merge_and_unload()
        else:
            has_adapter = True
    network = network.to(device).eval()
    return LoadedVLM(
        model=network,
        processor=processor,
        device=device,
        dtype=dtype,
        has_adapter=has_adapter,
        model_type=model_type,
        lock=threading.Lock(),
    )


# ---------------------------------------------------------------------------------------------
# Generation

# Greedy decoding stated in full. transformers fills every generation setting left unset from
# the checkpoint's generation_config.json (Qwen2.5-VL ships repetition_penalty 1.05), so each
# setting that changes which token greedy picks is given its neutral value here; a system
# changes one only through its spec.
GREEDY: dict[str, Any] = {
    "do_sample": False,
    "num_beams": 1,
    "temperature": None,
    "top_p": None,
    "top_k": None,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "length_penalty": 1.0,
    "min_length": 0,
}
# What each result records of the configuration generate() actually ran with.
RECORDED_SETTINGS = (
    "do_sample",
    "num_beams",
    "max_new_tokens",
    "min_new_tokens",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "length_penalty",
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "sequence_bias",
    "cache_implementation",
)


def processor_inputs(processor: Any, batch: list[PreparedRequest], spec: SystemSpec) -> Any:
    """The model inputs of a batch: chat template, images resized by the processor to the
    spec's pixel budget (as training resizes them), videos with Qwen's per-frame pixel cap and
    the clip budget where the video processor has them."""
    texts = processor.apply_chat_template(
        [p.messages for p in batch], tokenize=False, add_generation_prompt=True
    )
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
    images = [image for p in batch for image in p.images]
    if images:
        kwargs["images"] = images
        image_processor = getattr(processor, "image_processor", None)
        if spec.image_max_pixels and image_processor is not None:
            kwargs["images_kwargs"] = {
                "size": processor_size(image_processor.size, spec.image_max_pixels)
            }
    videos = [p.video for p in batch if p.video is not None]
    if videos:
        kwargs["videos"] = [v.frames for v in videos]
        # Frames are already sampled; the metadata carries their real timestamps (Qwen3-VL)
        # and the sampled fps (Qwen2.5-VL's seconds per temporal patch).
        kwargs["video_metadata"] = [v.metadata for v in videos]
        kwargs["do_sample_frames"] = False
        video_kwargs = video_processor_kwargs(getattr(processor, "video_processor", None), spec)
        if video_kwargs:
            kwargs["videos_kwargs"] = video_kwargs
    return processor(**kwargs)


def video_processor_kwargs(video_processor: Any, spec: SystemSpec) -> dict[str, Any]:
    """The per-frame pixel cap (Qwen3-VL's video processor has it; without it a real
    checkpoint spends about twice the visual tokens of Qwen's reference preprocessing on a
    clip) and the clip's pixel budget."""
    if video_processor is None:
        return {}
    out: dict[str, Any] = {}
    if hasattr(video_processor, "cap_pixels_per_frame"):
        out["cap_pixels_per_frame"] = bool(spec.video_cap_pixels_per_frame)
    if spec.video_max_pixels and getattr(video_processor, "size", None) is not None:
        out["size"] = processor_size(video_processor.size, spec.video_max_pixels)
    return out


def finish_reason(n_out: int, stopped: bool, max_new_tokens: int) -> str:
    """ "stop" when the report ended with an end token, "length" when it was cut at
    `max_new_tokens` (the OpenAI field's values)."""
    return "stop" if stopped or n_out < max_new_tokens else "length"


class VLMGenerator:
    """A `ReportGenerator` for kinds "vlm" (adapter on) and "vlm-base" (adapter disabled)."""

    def __init__(self, spec: SystemSpec) -> None:
        if spec.kind not in ("vlm", "vlm-base"):
            raise ValueError(f"VLMGenerator serves vlm and vlm-base systems, not {spec.kind!r}")
        self.spec = spec
        # vlm-base shares the unmerged model of the matching vlm system.
        merge = spec.merge_adapter if spec.kind == "vlm" else False
        self.loaded = load_vlm(spec.model, spec.adapter, merge, spec.device, spec.dtype)
        self.batch_size = spec.batch_size
        # Benchmarks fix the output length so every batch size does the same work.
        self.min_new_tokens: int | None = None

    @property
    def device(self) -> str:
        return self.loaded.device

    def _adapter_context(self):
        if self.spec.kind == "vlm-base" and self.loaded.has_adapter:
            return self.loaded.model.disable_adapter()
        return contextlib.nullcontext()

    def _eos_ids(self) -> list[int]:
        tokenizer = self.loaded.processor.tokenizer
        ids: list[int] = []
        for token in ("<|im_end|>", "<|endoftext|>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                ids.append(token_id)
        config_eos = getattr(self.loaded.model.generation_config, "eos_token_id", None)
        for token_id in config_eos if isinstance(config_eos, list) else [config_eos]:
            if isinstance(token_id, int) and token_id not in ids:
                ids.append(token_id)
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
            ids.append(tokenizer.eos_token_id)
        return ids

    def _processor_inputs(self, batch: list[PreparedRequest]):
        return processor_inputs(self.loaded.processor, batch, self.spec)

    def generation_settings(self, eos_ids: list[int], pad_id: int | None) -> dict[str, Any]:
        """The keyword arguments of every generate() call of this system."""
        settings = dict(GREEDY)
        settings.update(
            max_new_tokens=self.spec.max_new_tokens,
            repetition_penalty=float(self.spec.repetition_penalty),
            eos_token_id=eos_ids,
            pad_token_id=pad_id,
        )
        if self.min_new_tokens:
            settings["min_new_tokens"] = self.min_new_tokens
        if self.spec.static_cache:
            # transformers compiles the forward pass itself for a static cache on a GPU.
            settings["cache_implementation"] = "static"
        return settings

    def effective_config(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The decoding settings generate() runs with after merging the checkpoint's
        generation config (recorded with every result)."""
        model = self.loaded.model
        try:
            config, _ = model._prepare_generation_config(None, **settings)
        except (AttributeError, TypeError, ValueError):
            # transformers' private merge changed: record what was asked for.
            return {k: settings.get(k) for k in RECORDED_SETTINGS if k in settings}
        return {name: _jsonable(getattr(config, name, None)) for name in RECORDED_SETTINGS}

    def _run_batch(self, batch: list[PreparedRequest]) -> list[ReportResult]:
        import torch

        started = time.perf_counter()
        inputs = self._processor_inputs(batch).to(self.loaded.device)
        if self.loaded.dtype != "float32":
            for name in ("pixel_values", "pixel_values_videos"):
                if name in inputs:
                    inputs[name] = inputs[name].to(_torch_dtype(self.loaded.dtype))
        eos_ids = self._eos_ids()
        tokenizer = self.loaded.processor.tokenizer
        settings = self.generation_settings(eos_ids, tokenizer.pad_token_id)
        with self.loaded.lock, self._adapter_context(), torch.inference_mode():
            output = self.loaded.model.generate(**inputs, **settings)
        config = self.effective_config(settings)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].cpu()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        elapsed = time.perf_counter() - started
        results = []
        for row, prepared in enumerate(batch):
            tokens = new_tokens[row].tolist()
            n_out = len(tokens)
            stopped = False
            for i, token in enumerate(tokens):
                if token in eos_ids:
                    n_out = i + 1
                    stopped = True
                    break
            text = tokenizer.decode(tokens[:n_out], skip_special_tokens=True).strip()
            meta: dict[str, Any] = {
                "finish_reason": finish_reason(n_out, stopped, self.spec.max_new_tokens),
                "generation_config": config,
                "batch_size": len(batch),
                "batch_latency_s": elapsed,
                "adapter": "off" if self.spec.kind == "vlm-base" else "on",
                "n_images": len(prepared.images),
            }
            if len(batch) != self.spec.batch_size and self.batch_size != self.spec.batch_size:
                # An out-of-memory back-off changed the batch shape this text was made with.
                meta["batch_size_backoff"] = {"from": self.spec.batch_size, "to": len(batch)}
            if prepared.video is not None:
                meta.update(
                    frame_indices=prepared.video.frame_indices,
                    video_fps=prepared.video.fps,
                    frame_source=prepared.video.source,
                )
            results.append(
                ReportResult(
                    text=text,
                    # Amortised over the batch, so summing latencies gives the wall time.
                    latency_s=elapsed / len(batch),
                    prompt_tokens=int(prompt_tokens[row]),
                    output_tokens=n_out,
                    device=self.loaded.device,
                    meta=meta,
                )
            )
        return results

    @property
    def chunk_size(self) -> int:
        """Requests a run hands over at once: several batches, so that they can be ordered by
        length and the next batch's media read while the current one generates."""
        return self.spec.batch_size * 4

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        """Greedy reports for `requests`, in their order.

        The requests are batched by length (prompt cost), so little of a batch is padding,
        and the media of the batches ahead are read on a worker thread while the model
        generates (bounded to two batches ahead, so memory stays bounded on long videos).
        """
        order = sorted(range(len(requests)), key=lambda i: prompt_cost(requests[i]))
        ordered = [requests[i] for i in order]
        # Images stay full size: the processor resizes them to the pixel budget, exactly as
        # training does.
        media = MediaPrefetch(
            ordered,
            lambda r: prepare_request(r, prompt, self.spec, downscale=False),
            ahead=2 * max(1, self.batch_size),
        )

        def run_batch(batch: list[int]) -> list[ReportResult]:
            waited = time.perf_counter()
            prepared = [media.get(i) for i in batch]
            wait_s = time.perf_counter() - waited
            media.release(batch)
            results = self._run_batch(prepared)
            for result in results:
                result.meta["media_wait_s"] = round(wait_s, 4)
            return results

        def remember(size: int) -> None:
            # Later calls start at the size that fitted.
            self.batch_size = size

        try:
            out = run_in_batches(
                list(range(len(ordered))),
                self.batch_size,
                run_batch,
                progress,
                on_out_of_memory=remember,
            )
        finally:
            media.close()
        results: list[ReportResult | None] = [None] * len(requests)
        for position, result in zip(order, out, strict=True):
            results[position] = result
        return [r for r in results if r is not None]


def prompt_cost(request: ReportRequest) -> tuple:
    """A sort key that puts requests of similar prompt length together: video or not, the
    number of images and their pixels (read from the file headers only), the question."""
    from PIL import Image

    pixels = 0
    for path in request.images:
        try:
            with Image.open(path) as image:
                pixels += image.width * image.height
        except OSError:
            pixels += 0  # the real read reports the problem, with the case named
    return (request.video is not None, len(request.images), pixels, len(request.question or ""))


class MediaPrefetch:
    """Reads the media of requests ahead of their use on one worker thread, at most `ahead`
    requests beyond the last one asked for; `get(i)` waits for request i's media."""

    def __init__(self, requests: list[ReportRequest], read: Callable, ahead: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.requests = requests
        self.read = read
        self.ahead = max(1, ahead)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")
        self.futures: dict[int, Any] = {}
        self.submitted = 0

    def _fill(self, upto: int) -> None:
        while self.submitted < min(len(self.requests), upto):
            i = self.submitted
            self.futures[i] = self.pool.submit(self.read, self.requests[i])
            self.submitted += 1

    def get(self, index: int) -> PreparedRequest:
        self._fill(index + 1 + self.ahead)
        if index not in self.futures:  # released and asked again (an out-of-memory retry)
            self.futures[index] = self.pool.submit(self.read, self.requests[index])
        return self.futures[index].result()

    def release(self, indices: list[int]) -> None:
        """Forget read media once a batch holds it (a retry reads it again)."""
        for i in indices:
            self.futures.pop(i, None)

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
