"""An offline tiny Qwen3-VL of the real architecture, written as a normal Hugging Face folder.

No weights can be downloaded in tests or the demo, so the builder trains a small byte-level BPE
tokenizer with the Qwen special tokens, builds a `Qwen3VLConfig` with tiny sizes, initialises
random weights from a seed and saves model, tokenizer, image/video processors and the original
Qwen3-VL chat template. The folder loads with `AutoModelForImageTextToText.from_pretrained` and
`AutoProcessor.from_pretrained`, so tests exercise the real loading path.
"""

from __future__ import annotations

import json
from pathlib import Path

from model.quiet import quietly

# Qwen2/Qwen3 special tokens in their original order (ids follow the trained vocabulary).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

TINY_VOCAB_SIZE = 512
TINY_IMAGE_MAX_PIXELS = 224 * 224  # 49 image tokens at patch 16 / merge 2
TINY_VIDEO_MAX_PIXELS = 4 * 128 * 128  # frames x height x width budget of one clip

# Text the tokenizer is trained on: report vocabulary, so decoded outputs look like words.
_CORPUS = [
    "Findings: a sessile polyp of about 6 mm in the sigmoid colon, Paris 0-Is, NICE type 2.",
    "Impression: adenomatous polyp suspected. Recommendation: cold snare polypectomy.",
    "Pedunculated polyp 15 mm in the descending colon, JNET 2A, tubular adenoma suspected.",
    "Flat lesion Paris 0-IIa in the caecum, hyperplastic pattern NICE 1, no resection needed.",
    "Heart size normal. Lungs are clear. No pleural effusion or pneumothorax.",
    "Question: what is the size of the polyp? Answer: between 5 and 10 mm.",
    "The mucosa is normal. No bleeding. Ulcerative colitis, Mayo score 2. Oesophagitis.",
    "You are an experienced gastroenterologist writing a colonoscopy report.",
    "location size morphology surface pattern histology impression recommendation",
    "0123456789 mm cm left right upper lower transverse ascending rectum ileum",
]


def _train_tokenizer(seed: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE - len(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # BPE training is deterministic for a fixed corpus; the seed only repeats the corpus order.
    corpus = _CORPUS[seed % len(_CORPUS) :] + _CORPUS[: seed % len(_CORPUS)]
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    tok.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
    )


def _chat_template(name: str = "qwen3_vl") -> str:
    """An original Qwen-VL chat template (copies of TRL's `chat_templates/<name>.jinja`, kept
    in this package so building the tiny models does not need TRL). Found next to this file:
    `importlib.resources.files("model")` can resolve to another folder named `model` on the
    path (tests/model under pytest), which has no templates."""
    return (Path(__file__).resolve().parent / "templates" / f"{name}.jinja").read_text(
        encoding="utf-8"
    )


def _special_ids(tokenizer) -> dict[str, int]:
    return {
        "pad": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "image": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }


def _widen_head(model, seed: int) -> None:
    """Random init at std 0.02 gives near-uniform logits; a wider output head makes greedy
    decoding depend visibly on the input, which the tests rely on."""
    import torch

    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        head = model.lm_head.weight
        head.copy_(torch.randn(head.shape, generator=generator) * 0.5)


def tiny_qwen3_vl_config(vocab_size: int, token_ids: dict[str, int]):
    """The tiny `Qwen3VLConfig` (text hidden 64, 2 layers, vision depth 2, deepstack [0, 1])."""
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            "pad_token_id": token_ids["pad"],
            "bos_token_id": None,
            "eos_token_id": token_ids["eos"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": [0, 1],
        },
        image_token_id=token_ids["image"],
        video_token_id=token_ids["video"],
        vision_start_token_id=token_ids["vision_start"],
        vision_end_token_id=token_ids["vision_end"],
        tie_word_embeddings=False,
    )


@quietly("transformers")
def build_tiny_qwen3_vl(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight Qwen3-VL (model, tokenizer, processors, template) to `folder`."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(seed)
    ids = _special_ids(tokenizer)
    config = tiny_qwen3_vl_config(len(tokenizer), ids)

    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    _widen_head(model, seed)
    model.generation_config = GenerationConfig(
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        do_sample=False,
        num_beams=1,
    )
    model.save_pretrained(folder)

    image_processor = Qwen2VLImageProcessor(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": TINY_IMAGE_MAX_PIXELS},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 32 * 32 * 2, "longest_edge": TINY_VIDEO_MAX_PIXELS},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        cap_pixels_per_frame=True,
        max_frames=64,
    )
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=_chat_template(),
    )
    processor.save_pretrained(folder)
    (folder / "medvision_tiny.json").write_text(
        json.dumps({"builder": "model.tiny.build_tiny_qwen3_vl", "seed": seed, "synthetic": True})
        + "\n",
        encoding="utf-8",
    )
    return folder


@quietly("transformers")
def build_tiny_qwen2_5_vl(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight Qwen2.5-VL folder (patch 14, windowed vision attention), so the
    older Qwen-VL family is exercised through the same loading and generation path."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(seed)
    ids = _special_ids(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": [4, 2, 2],
            },
            "pad_token_id": ids["pad"],
            "bos_token_id": None,
            "eos_token_id": ids["eos"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["image"],
        video_token_id=ids["video"],
        vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    _widen_head(model, seed)
    model.generation_config = GenerationConfig(
        eos_token_id=ids["eos"], pad_token_id=ids["pad"], do_sample=False, num_beams=1
    )
    model.save_pretrained(folder)
    sizes = {"shortest_edge": 28 * 28, "longest_edge": TINY_IMAGE_MAX_PIXELS}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            patch_size=14, temporal_patch_size=2, merge_size=2, size=sizes
        ),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(
            patch_size=14,
            temporal_patch_size=2,
            merge_size=2,
            size={"shortest_edge": 28 * 28 * 2, "longest_edge": TINY_VIDEO_MAX_PIXELS},
        ),
        chat_template=_chat_template("qwen2_5_vl"),
    )
    processor.save_pretrained(folder)
    (folder / "medvision_tiny.json").write_text(
        json.dumps({"builder": "model.tiny.build_tiny_qwen2_5_vl", "seed": seed, "synthetic": True})
        + "\n",
        encoding="utf-8",
    )
    return folder


@quietly("transformers")
def build_tiny_lora_adapter(model_folder: Path, adapter_folder: Path, seed: int = 0) -> Path:
    """Write a peft LoRA adapter for the tiny model, with non-zero B so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    adapter_folder = Path(adapter_folder)
    adapter_folder.mkdir(parents=True, exist_ok=True)
    base = AutoModelForImageTextToText.from_pretrained(model_folder, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        # Language-model projections only, as the fine-tuning recipe targets.
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        init_lora_weights=True,
    )
    peft_model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            # peft starts B at zero (a no-op adapter); give it weights so on/off outputs differ.
            if "lora_B" in name or "lora_A" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    peft_model.save_pretrained(adapter_folder)
    return adapter_folder
