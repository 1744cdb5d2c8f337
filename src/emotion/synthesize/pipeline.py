"""Stable Diffusion through diffusers: the real model from the hub or a folder, or a tiny one.

``model_id: tiny`` builds a random-weight ``StableDiffusionPipeline`` from configs in code, so
the whole generation path (tokenizer, text encoder, UNet denoising loop, VAE decode, batching,
per-image generators) runs offline in a fraction of a second. Its images are noise; quality
control rejects them, which is the point of running it in the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from emotion.core.errors import ConfigError
from emotion.synthesize.prompts import Slot

TINY = "tiny"
_TINY_WORDS = "portrait photo person face eyes mouth brows smiling frowning open wide raised"


def _tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(_TINY_WORDS.split())}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=77, pad_token="[PAD]", unk_token="[UNK]"
    )


def tiny_pipeline(seed: int = 0) -> StableDiffusionPipeline:
    """A random-weight Stable Diffusion pipeline (~1M parameters), deterministic for ``seed``."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            pad_token_id=1,
            vocab_size=1000,
        )
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_tiny_tokenizer(),
        unet=unet,
        scheduler=DDIMScheduler(clip_sample=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: float16 on CUDA (Stable Diffusion's usual precision), float32 elsewhere."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_pipeline(
    model_id: str, revision: str | None, device: torch.device, dtype: torch.dtype
) -> StableDiffusionPipeline:
    """The pipeline named by ``model_id``: ``tiny``, a local folder, or a Hugging Face hub id."""
    if model_id == TINY:
        pipe = tiny_pipeline()
    else:
        local = Path(model_id).is_dir()
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                model_id, revision=None if local else revision, torch_dtype=dtype
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"synth.model_id: cannot load '{model_id}' ({exc}). Use a local pipeline folder "
                "(save_pretrained), a reachable hub id, or `tiny` offline"
            ) from None
    pipe = pipe.to(device=device) if pipe.dtype == dtype else pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_identity(pipe: StableDiffusionPipeline, model_id: str, revision: str | None) -> dict:
    """What produced the images: id, requested revision, resolved commit when the hub says."""
    commit = pipe.config.get("_commit_hash") if hasattr(pipe, "config") else None
    return {"model_id": model_id, "revision": revision, "resolved_commit": commit}


def generate(
    pipe: StableDiffusionPipeline,
    slots: Sequence[Slot],
    *,
    steps: int,
    guidance_scale: float,
    size: int,
    device: torch.device,
) -> list[Image.Image]:
    """One RGB image per slot; each image's noise comes from its own seeded generator."""
    generators = [torch.Generator(device=device).manual_seed(s.seed) for s in slots]
    kwargs: dict[str, Any] = {
        "prompt": [s.prompt for s in slots],
        "negative_prompt": [s.negative_prompt for s in slots],
        "num_inference_steps": steps,
        "guidance_scale": guidance_scale,
        "height": size,
        "width": size,
        "generator": generators,
        "output_type": "pil",
    }
    with torch.inference_mode():
        return list(pipe(**kwargs).images)
