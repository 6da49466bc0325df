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

from model.media import PreparedRequest, prepare_request
from model.prompts import PromptTemplate
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
        processor = self.loaded.processor
        texts = processor.apply_chat_template(
            [p.messages for p in batch], tokenize=False, add_generation_prompt=True
        )
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        images = [image for p in batch for image in p.images]
        if images:
            kwargs["images"] = images
        videos = [p.video for p in batch if p.video is not None]
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
            # Frames are already sampled; the metadata carries their real timestamps (Qwen3-VL)
            # and the sampled fps (Qwen2.5-VL's seconds per temporal patch).
            kwargs["video_metadata"] = [v.metadata for v in videos]
            kwargs["do_sample_frames"] = False
        return processor(**kwargs)

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
        with self.loaded.lock, self._adapter_context(), torch.inference_mode():
            output = self.loaded.model.generate(
                **inputs,
                max_new_tokens=self.spec.max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=eos_ids,
                pad_token_id=tokenizer.pad_token_id,
                **({"min_new_tokens": self.min_new_tokens} if self.min_new_tokens else {}),
            )
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].cpu()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        elapsed = time.perf_counter() - started
        results = []
        for row, prepared in enumerate(batch):
            tokens = new_tokens[row].tolist()
            n_out = len(tokens)
            for i, token in enumerate(tokens):
                if token in eos_ids:
                    n_out = i + 1
                    break
            text = tokenizer.decode(tokens[:n_out], skip_special_tokens=True).strip()
            meta: dict[str, Any] = {
                "batch_size": len(batch),
                "batch_latency_s": elapsed,
                "adapter": "off" if self.spec.kind == "vlm-base" else "on",
                "n_images": len(prepared.images),
            }
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

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        """Greedy reports for `requests`, in their order."""

        def run_batch(batch: list[ReportRequest]) -> list[ReportResult]:
            # Media is read per batch so memory stays bounded on long runs of videos.
            return self._run_batch([prepare_request(r, prompt, self.spec) for r in batch])

        def remember(size: int) -> None:
            # Later calls start at the size that fitted.
            self.batch_size = size

        return run_in_batches(
            requests, self.batch_size, run_batch, progress, on_out_of_memory=remember
        )
