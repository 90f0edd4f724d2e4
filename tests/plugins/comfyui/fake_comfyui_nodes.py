"""The fake ComfyUI's node catalogue: ``/object_info`` specs, prompt validation and node execution.

Specs follow ComfyUI's core nodes (``nodes.py``, ``comfy_extras``) as ``/object_info`` reports them: combo inputs as
``[[options...], {...}]`` (and, for the nodes newer ComfyUI builds describe through its v3 schema, as
``["COMBO", {"options": [...]}]``), ``INT``/``FLOAT`` with ``min``/``max``. Validation reproduces
``execution.validate_prompt``/``validate_inputs``: error types, messages, ``details`` and which node an error lands on.

Execution is a deterministic painter instead of a diffusion model: a KSampler over an empty latent paints a flat
light backdrop with a coloured figure in the middle (something a matting step can cut out), or a full-frame scene
when the positive prompt asks for a background/scenery; over an encoded image it blends the painting into that image
by ``denoise``. Everything is a pure function of the inputs (seed, prompt text, size, checkpoint, LoRAs, ...).
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from PIL.PngImagePlugin import PngInfo

DEFAULT_CHECKPOINTS = ["animagine-xl-3.1.safetensors", "sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]
DEFAULT_LORAS = ["add_detail.safetensors", "flat_color.safetensors", "pixel_art_xl.safetensors"]
MAX_PIXELS = 4096 * 4096
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde", "ddim", "uni_pc"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
SCENE_WORDS = {"background", "backgrounds", "scenery", "landscape", "cityscape", "interior"}


class NodeFailure(Exception):
    """An exception raised while a node executes (becomes an ``execution_error`` event)."""

    def __init__(self, message: str, exception_type: str = "Exception") -> None:
        super().__init__(message)
        self.exception_type = exception_type


def _int(default: int, lo: int, hi: int, step: int = 1, **extra: Any) -> list[Any]:
    return ["INT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


def _float(default: float, lo: float, hi: float, step: float = 0.01, **extra: Any) -> list[Any]:
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


# class_type -> (required, optional, outputs, output_names, output_node, category)
def catalogue(checkpoints: list[str], loras: list[str], input_files: list[str]) -> dict[str, dict[str, Any]]:
    """The node specs keyed by class type, in ``/object_info`` shape, for the server's current files."""
    strength = _float(1.0, -100.0, 100.0, 0.01)
    table: dict[str, tuple[dict[str, Any], dict[str, Any], list[str], list[str], bool, str]] = {
        "CheckpointLoaderSimple": (
            {"ckpt_name": [sorted(checkpoints), {"tooltip": "The name of the checkpoint (model) to load."}]},
            {},
            ["MODEL", "CLIP", "VAE"],
            ["MODEL", "CLIP", "VAE"],
            False,
            "loaders",
        ),
        "LoraLoader": (
            {
                "model": ["MODEL", {}],
                "clip": ["CLIP", {}],
                "lora_name": [sorted(loras), {}],
                "strength_model": strength,
                "strength_clip": strength,
            },
            {},
            ["MODEL", "CLIP"],
            ["MODEL", "CLIP"],
            False,
            "loaders",
        ),
        "CLIPTextEncode": (
            {"text": ["STRING", {"multiline": True, "dynamicPrompts": True}], "clip": ["CLIP", {}]},
            {},
            ["CONDITIONING"],
            ["CONDITIONING"],
            False,
            "conditioning",
        ),
        "EmptyLatentImage": (
            {
                "width": _int(512, 16, 16384, 8),
                "height": _int(512, 16, 16384, 8),
                "batch_size": _int(1, 1, 4096),
            },
            {},
            ["LATENT"],
            ["LATENT"],
            False,
            "latent",
        ),
        "KSampler": (
            {
                "model": ["MODEL", {}],
                "seed": _int(0, 0, 0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                "steps": _int(20, 1, 10000),
                "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01),
                "sampler_name": [SAMPLERS, {}],
                "scheduler": [SCHEDULERS, {}],
                "positive": ["CONDITIONING", {}],
                "negative": ["CONDITIONING", {}],
                "latent_image": ["LATENT", {}],
                "denoise": _float(1.0, 0.0, 1.0, 0.01),
            },
            {},
            ["LATENT"],
            ["LATENT"],
            False,
            "sampling",
        ),
        "VAEDecode": ({"samples": ["LATENT", {}], "vae": ["VAE", {}]}, {}, ["IMAGE"], ["IMAGE"], False, "latent"),
        "VAEEncode": ({"pixels": ["IMAGE", {}], "vae": ["VAE", {}]}, {}, ["LATENT"], ["LATENT"], False, "latent"),
        "SaveImage": (
            {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
            {},
            [],
            [],
            True,
            "image",
        ),
        "PreviewImage": ({"images": ["IMAGE", {}]}, {}, [], [], True, "image"),
        "LoadImage": (
            {"image": [sorted(input_files), {"image_upload": True}]},
            {},
            ["IMAGE", "MASK"],
            ["IMAGE", "MASK"],
            False,
            "image",
        ),
        "ImageScale": (
            {
                "image": ["IMAGE", {}],
                "upscale_method": ["COMBO", {"options": UPSCALE_METHODS}],
                "width": _int(512, 0, 16384),
                "height": _int(512, 0, 16384),
                "crop": ["COMBO", {"options": ["disabled", "center"]}],
            },
            {},
            ["IMAGE"],
            ["IMAGE"],
            False,
            "image/upscaling",
        ),
        "EmptyImage": (
            {
                "width": _int(512, 1, 16384),
                "height": _int(512, 1, 16384),
                "batch_size": _int(1, 1, 4096),
                "color": _int(0, 0, 0xFFFFFF, display="color"),
            },
            {},
            ["IMAGE"],
            ["IMAGE"],
            False,
            "image",
        ),
        "ImageCompositeMasked": (
            {
                "destination": ["IMAGE", {}],
                "source": ["IMAGE", {}],
                "x": _int(0, 0, 16384),
                "y": _int(0, 0, 16384),
                "resize_source": ["BOOLEAN", {"default": False}],
            },
            {"mask": ["MASK", {}]},
            ["IMAGE"],
            ["IMAGE"],
            False,
            "image",
        ),
        "InvertMask": ({"mask": ["MASK", {}]}, {}, ["MASK"], ["MASK"], False, "mask"),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (required, optional, outputs, names, output_node, category) in table.items():
        inputs: dict[str, Any] = {"required": required}
        if optional:
            inputs["optional"] = optional
        if name == "SaveImage":
            inputs["hidden"] = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
        out[name] = {
            "input": inputs,
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": outputs,
            "output_is_list": [False] * len(outputs),
            "output_name": names,
            "name": name,
            "display_name": name,
            "description": "",
            "python_module": "nodes",
            "category": category,
            "output_node": output_node,
        }
    return out


# -- validation (execution.validate_prompt) ----------------------------------------------------------------------


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def validate_prompt(
    prompt: Any, specs: Mapping[str, dict[str, Any]], image_exists: Callable[[str], bool]
) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
    """``(ok, error, outputs to execute, node_errors)`` exactly as ComfyUI's ``validate_prompt`` decides them."""
    if not isinstance(prompt, dict):
        return False, _error("invalid_prompt", "Prompt is not a dictionary", ""), [], {}
    outputs = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [], {}
        spec = specs.get(node["class_type"]) if isinstance(node["class_type"], str) else None
        if spec is None:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [], {}
        if spec["output_node"]:
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}

    validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
    good: list[str] = []
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for output in sorted(outputs):
        valid, reasons = _validate_inputs(prompt, output, validated, specs, image_exists)
        if valid:
            good.append(output)
            continue
        failed.append((output, reasons))
        for node_id, (ok, errors) in validated.items():
            # Nodes downstream of a broken one are invalid too but carry no errors of their own: ComfyUI omits them.
            if ok or not errors:
                continue
            entry = node_errors.setdefault(
                node_id, {"errors": errors, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]}
            )
            entry["dependent_outputs"].append(output)
    if not good:
        lines = [f"{e['message']}: {e['details']}" for _, errors in failed for e in errors]
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "\n".join(lines))
        return False, error, [], node_errors
    return True, None, good, node_errors


def _validate_inputs(
    prompt: dict[str, Any],
    node_id: str,
    validated: dict[str, tuple[bool, list[dict[str, Any]]]],
    specs: Mapping[str, dict[str, Any]],
    image_exists: Callable[[str], bool],
) -> tuple[bool, list[dict[str, Any]]]:
    if node_id in validated:
        return validated[node_id]
    validated[node_id] = (True, [])  # a cycle back to this node is judged by the first visit
    node = prompt[node_id]
    inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
    spec = specs[node["class_type"]]["input"]
    errors: list[dict[str, Any]] = []
    valid = True
    wanted = list(spec["required"].items())
    wanted += [(name, info) for name, info in spec.get("optional", {}).items() if name in inputs]
    for name, info in wanted:
        if name not in inputs:
            errors.append(_error("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value, kind = inputs[name], info[0]
        options = info[1] if len(info) > 1 else {}
        if isinstance(value, list):
            if len(value) != 2:
                message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
                errors.append(_error("bad_linked_input", message, name, input_name=name, received_value=value))
                continue
            source_id, slot = str(value[0]), value[1]
            source = prompt.get(source_id)
            if not isinstance(source, dict) or not isinstance(slot, int):
                detail = f"'{value[0]}'"
                errors.append(
                    _error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        detail,
                        input_name=name,
                        exception_message=detail,
                        exception_type="KeyError",
                        linked_node=value,
                    )
                )
                continue
            returns = specs[source["class_type"]]["output"]
            if not 0 <= slot < len(returns):
                detail = "tuple index out of range"
                errors.append(
                    _error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        detail,
                        input_name=name,
                        exception_message=detail,
                        exception_type="IndexError",
                        linked_node=value,
                    )
                )
                continue
            if returns[slot] != kind and kind != "*":
                errors.append(
                    _error(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        f"{name}, received_type({returns[slot]}) mismatch input_type({kind})",
                        input_name=name,
                        received_type=returns[slot],
                        linked_node=value,
                    )
                )
                continue
            inner_ok, _ = _validate_inputs(prompt, source_id, validated, specs, image_exists)
            valid = valid and inner_ok
            continue
        problem = _check_literal(name, value, kind, options, node["class_type"], image_exists)
        if problem is not None:
            errors.append(problem)
        elif kind in ("INT", "FLOAT"):
            inputs[name] = int(value) if kind == "INT" else float(value)
    result = (valid and not errors, errors)
    validated[node_id] = result
    return result


def _check_literal(
    name: str, value: Any, kind: Any, options: Mapping[str, Any], class_type: str, image_exists: Callable[[str], bool]
) -> dict[str, Any] | None:
    if kind in ("INT", "FLOAT"):
        try:
            number: float = int(value) if kind == "INT" else float(value)
        except (TypeError, ValueError) as exc:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{name}, {value}, {exc}",
                input_name=name,
                received_value=value,
                exception_message=str(exc),
            )
        if "min" in options and number < options["min"]:
            message = f"Value {number} smaller than min of {options['min']}"
            return _error("value_smaller_than_min", message, name, input_name=name, received_value=value)
        if "max" in options and number > options["max"]:
            message = f"Value {number} bigger than max of {options['max']}"
            return _error("value_bigger_than_max", message, name, input_name=name, received_value=value)
        return None
    if kind == "STRING" and not isinstance(value, str | int | float):
        message = "Failed to convert an input value to a STRING value"
        return _error("invalid_input_type", message, f"{name}, {value}", input_name=name, received_value=value)
    if class_type == "LoadImage":
        # LoadImage has VALIDATE_INPUTS (the file must exist), which replaces the value-in-list check.
        if not isinstance(value, str) or not image_exists(value):
            return _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"{name} - Invalid image file: {value}",
                input_name=name,
                received_value=value,
            )
        return None
    choices = kind if isinstance(kind, list) else options.get("options") if kind == "COMBO" else None
    if choices is not None and value not in choices:
        listed = f"(list of length {len(choices)})" if len(choices) > 20 else str(choices)
        return _error(
            "value_not_in_list",
            "Value not in list",
            f"{name}: '{value}' not in {listed}",
            input_name=name,
            received_value=value,
        )
    return None


# -- execution ---------------------------------------------------------------------------------------------------


def execution_order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """Nodes in the order ComfyUI runs them for ``outputs``: each output's unexecuted inputs first, depth-first."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id].get("inputs", {}).values():
            if isinstance(value, list):
                visit(str(value[0]))
        order.append(node_id)

    for output in outputs:
        visit(output)
    return order


def signature(prompt: Mapping[str, Any], node_id: str, memo: dict[str, str]) -> str:
    """A hash of a node's class and inputs, following links: equal signatures may reuse cached outputs."""
    if node_id not in memo:
        node = prompt[node_id]
        parts: dict[str, Any] = {"class_type": node["class_type"]}
        for name, value in sorted(node.get("inputs", {}).items()):
            parts[name] = [signature(prompt, str(value[0]), memo), value[1]] if isinstance(value, list) else value
        memo[node_id] = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return memo[node_id]


def _hash(*parts: Any) -> bytes:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()


def is_scene(text: str) -> bool:
    """A background request: the positive prompt names a background/scenery or says ``no humans``/``no
    people`` — unless it asks for a figure (``solo``, ``full body``): a sprite prompt says "plain white
    background, no scenery" to get a backdrop it can matte, and that is no scene."""
    lowered = text.lower()
    words = set(re.findall(r"[a-z]+", lowered))
    if "solo" in words or "full body" in lowered:
        return False
    return bool(words & SCENE_WORDS) or "no humans" in lowered or "no people" in lowered


def _light(key: bytes) -> tuple[int, int, int]:
    return (205 + key[0] % 41, 205 + key[1] % 41, 205 + key[2] % 41)


def _vivid(key: bytes, value: float = 0.6) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(key[0] / 255, 0.55 + key[1] / 255 * 0.35, value + key[2] / 255 * 0.15)
    return (int(r * 255), int(g * 255), int(b * 255))


def paint(seed: int, text: str, width: int, height: int, model: Mapping[str, Any]) -> Image.Image:
    """The fake diffusion: a figure on a flat light backdrop, or a full-frame scene for background prompts."""
    key = _hash(seed, text, width, height, model.get("ckpt"), model.get("loras"))
    text_key = _hash(text)
    image = Image.new("RGB", (width, height), _light(key))
    draw = ImageDraw.Draw(image)
    if is_scene(text):
        _paint_scene(draw, key, text, width, height)
    else:
        _paint_figure(draw, key, text_key, text, width, height)
    # A little sensor-like noise so the backdrop is flat to the eye, not to the byte (as a real render is).
    rng = np.random.default_rng(int.from_bytes(key[:8], "big"))
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-3, 4, size=(height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _paint_figure(draw: ImageDraw.ImageDraw, key: bytes, text_key: bytes, text: str, w: int, h: int) -> None:
    side = min(w, h)
    body, hair, skin = _vivid(text_key[3:], 0.45), _vivid(text_key[6:], 0.25), (238, 200, 170)
    cx, head_r = w / 2 + (key[5] % 11 - 5) * w / 400, side * 0.12
    head_y = h * 0.27
    draw.rounded_rectangle((cx - w * 0.2, h * 0.42, cx + w * 0.2, h * 0.9), radius=int(side * 0.08), fill=body)
    draw.rectangle((cx - head_r * 0.35, head_y + head_r * 0.8, cx + head_r * 0.35, h * 0.44), fill=skin)
    draw.ellipse((cx - head_r * 1.15, head_y - head_r * 1.2, cx + head_r * 1.15, head_y + head_r * 0.6), fill=hair)
    draw.ellipse((cx - head_r, head_y - head_r, cx + head_r, head_y + head_r), fill=skin)
    eye = max(2.0, head_r * 0.12)
    for dx in (-0.4, 0.4):
        ex = cx + dx * head_r
        draw.ellipse((ex - eye, head_y - eye, ex + eye, head_y + eye), fill=(40, 30, 30))
    lowered = text.lower()
    mouth = (cx - head_r * 0.35, head_y + head_r * 0.3, cx + head_r * 0.35, head_y + head_r * 0.6)
    if any(w in lowered for w in ("sad", "cry", "tear")):
        draw.arc((mouth[0], mouth[1] + head_r * 0.15, mouth[2], mouth[3] + head_r * 0.15), 200, 340, fill=(90, 30, 30))
    elif any(w in lowered for w in ("surprise", "shock", "gasp")):
        draw.ellipse((cx - eye, mouth[1], cx + eye, mouth[1] + 2 * eye), fill=(90, 30, 30))
    elif any(w in lowered for w in ("angry", "anger", "frown")):
        draw.line((mouth[0], mouth[1] + head_r * 0.1, mouth[2], mouth[1] + head_r * 0.1), fill=(90, 30, 30), width=2)
    else:
        draw.arc(mouth, 20, 160, fill=(90, 30, 30), width=2)


def _paint_scene(draw: ImageDraw.ImageDraw, key: bytes, text: str, w: int, h: int) -> None:
    lowered = text.lower()
    night = any(word in lowered for word in ("night", "midnight", "dark"))
    top = (20, 24, 60) if night else (90 + key[6] % 60, 150 + key[7] % 60, 230)
    bottom = (60, 50, 90) if night else (240, 200 + key[8] % 40, 160)
    horizon = int(h * (0.55 + key[9] % 15 / 100))
    for y in range(horizon):
        t = y / max(1, horizon - 1)
        draw.line((0, y, w, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    ground = _vivid(key[10:], 0.3 if night else 0.55)
    draw.rectangle((0, horizon, w, h), fill=ground)
    sun_r = min(w, h) * 0.07
    sx, sy = w * (0.15 + key[12] % 70 / 100), h * 0.2
    draw.ellipse((sx - sun_r, sy - sun_r, sx + sun_r, sy + sun_r), fill=(235, 235, 210) if night else (255, 230, 120))
    for i in range(3 + key[13] % 4):
        bx = (key[14 + i] / 255) * w
        bw, bh = w * (0.08 + key[20 + i] % 10 / 100), h * (0.1 + key[24 + i] % 25 / 100)
        draw.rectangle((bx, horizon - bh, bx + bw, horizon), fill=_vivid(key[i:], 0.35))
    if "rain" in lowered:
        for i in range(0, w, max(4, w // 40)):
            draw.line((i, 0, i - w // 30, h), fill=(170, 180, 200), width=1)


def new_latent(width: int, height: int, batch: int) -> dict[str, Any]:
    """An empty latent of a size (``samples`` holds no pixels yet)."""
    if width * height * batch > MAX_PIXELS:
        raise NodeFailure(f"latent {width}x{height}x{batch} is larger than this server allows", "MemoryError")
    return {"width": width, "height": height, "samples": [None] * batch}


def sample(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """KSampler: paint each batch item (seed + index), blended into an encoded image by ``denoise``."""
    latent, model = inputs["latent_image"], inputs["model"]
    text = inputs["positive"]["text"]
    denoise = float(inputs["denoise"])
    out = []
    for index, start in enumerate(latent["samples"]):
        painted = paint(int(inputs["seed"]) + index, text, latent["width"], latent["height"], model)
        out.append(painted if start is None or denoise >= 1.0 else Image.blend(start, painted, denoise))
    return {**latent, "samples": out}


def decode(latent: Mapping[str, Any]) -> list[Image.Image]:
    """VAEDecode: the latent's pixels (mid-grey for a latent nobody sampled)."""
    size = (latent["width"], latent["height"])
    return [img if img is not None else Image.new("RGB", size, (128, 128, 128)) for img in latent["samples"]]


def encode(images: list[Image.Image]) -> dict[str, Any]:
    """VAEEncode: a latent carrying the pixels, its size rounded down to a multiple of 8 as the VAE does."""
    width, height = (images[0].width // 8) * 8, (images[0].height // 8) * 8
    if width == 0 or height == 0:
        raise NodeFailure("image too small to encode", "RuntimeError")
    return {"width": width, "height": height, "samples": [img.crop((0, 0, width, height)) for img in images]}


def scale(inputs: Mapping[str, Any]) -> list[Image.Image]:
    """ImageScale: resize (0 keeps the aspect ratio), optionally centre-cropping to the target's aspect first."""
    out = []
    for img in inputs["image"]:
        width, height = int(inputs["width"]), int(inputs["height"])
        if width == 0 and height == 0:
            out.append(img)
            continue
        width = width or max(1, round(img.width * height / img.height))
        height = height or max(1, round(img.height * width / img.width))
        method = {"nearest-exact": Image.Resampling.NEAREST, "area": Image.Resampling.BOX}.get(
            inputs["upscale_method"], Image.Resampling.BILINEAR
        )
        if inputs["crop"] == "center":
            out.append(ImageOps.fit(img, (width, height), method))
        else:
            out.append(img.resize((width, height), method))
    return out


def composite(inputs: Mapping[str, Any]) -> list[Image.Image]:
    """ImageCompositeMasked: paste ``source`` at (x, y), through ``mask`` (resized to the source) when given."""
    out = []
    mask = inputs.get("mask")
    for index, destination in enumerate(inputs["destination"]):
        source = inputs["source"][min(index, len(inputs["source"]) - 1)]
        if inputs.get("resize_source"):
            source = source.resize(destination.size, Image.Resampling.BILINEAR)
        canvas = destination.copy()
        layer_mask = None if mask is None else mask[min(index, len(mask) - 1)].resize(source.size)
        canvas.paste(source, (int(inputs["x"]), int(inputs["y"])), layer_mask)
        out.append(canvas)
    return out


def load_image(data: bytes) -> tuple[list[Image.Image], list[Image.Image]]:
    """LoadImage: RGB pixels and ComfyUI's MASK (1 - alpha; a 64x64 zero mask when the image has no alpha)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            img = ImageOps.exif_transpose(opened)
            img.load()
    except (OSError, ValueError) as exc:
        raise NodeFailure(f"cannot identify image file: {exc}", "PIL.UnidentifiedImageError") from None
    has_alpha = "A" in img.getbands()
    mask = ImageOps.invert(img.getchannel("A")) if has_alpha else Image.new("L", (64, 64), 0)
    return [img.convert("RGB")], [mask]


def png_bytes(image: Image.Image, prompt: Mapping[str, Any] | None) -> bytes:
    """SaveImage's file: PNG, compress level 4, the prompt JSON in a ``prompt`` text chunk."""
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def save_path(prefix: str) -> tuple[str, str]:
    """``(subfolder, base name)`` of a ``filename_prefix``; a prefix leaving the output folder is refused."""
    normal = posixpath.normpath(prefix.replace("\\", "/"))
    if normal.startswith(("/", "../")) or normal == "..":
        raise NodeFailure(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {normal}\n         output_dir: output",
            "Exception",
        )
    subfolder, base = posixpath.split(normal)
    return subfolder, base
