"""Workflow templates in ComfyUI's API format, binding render parameters into them, and checking a graph against a
server's ``/object_info`` before it is queued.

A workflow file is an API-format graph (``{node_id: {"class_type", "inputs"}}``, what ComfyUI's "Save (API Format)"
writes) plus two reserved top-level keys: ``comfyvn_bindings`` (binding name -> list of ``[node_id, input_name]``)
and optionally ``comfyvn_description``. A user workflow may keep its bindings in a sidecar ``<name>.bindings.json``
instead. The ``loras`` binding is special: ``[[node_id, "M,C"]]`` names the node whose MODEL (output slot M) and
CLIP (output slot C) outputs a chain of ``LoraLoader`` nodes takes over (``"0,1"`` for CheckpointLoaderSimple).
A template input whose value is ``null`` must be bound (``init_image`` in the image-to-image templates).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Invalid, NotFound, TooLarge, clip

__all__ = ["BUILTINS", "PARAMS", "Workflow", "bind", "builtin", "check_graph", "load_custom"]

BUILTINS = ("sprite", "sprite_img2img", "background", "sprite_pose_composite")
PARAMS = (
    "prompt",
    "negative",
    "seed",
    "width",
    "height",
    "checkpoint",
    "loras",
    "denoise",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "init_image",
    "filename_prefix",
)
RESERVED = ("comfyvn_bindings", "comfyvn_description")
MAX_WORKFLOW_BYTES = 4 * 1024 * 1024
MAX_NODES = 2000
MAX_TEXT = 20_000
MAX_LORAS = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

Bindings = dict[str, list[tuple[str, str]]]


@attrs.frozen
class Workflow:
    """A graph in ComfyUI's API format with the named places render parameters go."""

    name: str
    graph: dict[str, Any]
    bindings: Bindings
    description: str = ""


def builtin(name: str) -> Workflow:
    """One of the shipped templates (``BUILTINS``), freshly parsed so callers may not share state through it."""
    if name not in BUILTINS:
        raise NotFound(f"no built-in workflow {clip(name)!r}; known: {', '.join(BUILTINS)}", code="workflow_not_found")
    text = resources.files(__package__).joinpath("workflows", f"{name}.json").read_text(encoding="utf-8")
    return _parse(json.loads(text), name, sidecar=None)


def load_custom(path: Path) -> Workflow:
    """A user's API-format workflow with ``comfyvn_bindings`` inside or in ``<name>.bindings.json`` next to it."""
    path = Path(path)
    name = path.stem
    if not _NAME.match(name):
        raise Invalid(f"workflow name {clip(name)!r} must be letters, digits, '_', '-', '.'", field="path")
    data = _read_json(path)
    sidecar_path = path.with_name(f"{name}.bindings.json")
    sidecar = _read_json(sidecar_path) if sidecar_path.is_file() else None
    return _parse(data, name, sidecar=sidecar)


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_WORKFLOW_BYTES:
            raise TooLarge(f"workflow file {path.name} is over {MAX_WORKFLOW_BYTES} bytes", field="path")
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotFound(
            f"workflow file {clip(path.name)!r} does not exist", field="path", code="workflow_not_found"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        message = f"workflow file {clip(path.name)!r} is not readable JSON: {clip(str(exc), 120)}"
        raise Invalid(message, field="path", code="invalid_workflow") from None


def _parse(data: Any, name: str, sidecar: Any) -> Workflow:
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise Invalid(
            f"workflow {name!r} is in ComfyUI's UI format (nodes/links), not the API format the server runs: "
            "export it with 'Export (API)' / 'Save (API Format)' in ComfyUI, then add comfyvn_bindings",
            field="path",
            code="ui_format_workflow",
        )
    if not isinstance(data, dict):
        raise Invalid(f"workflow {name!r} must be a JSON object of nodes", field="path", code="invalid_workflow")
    if isinstance(data.get("prompt"), dict) and set(data) - {"prompt", *RESERVED} <= {"client_id", "extra_data"}:
        data = {**data["prompt"], **{k: data[k] for k in RESERVED if k in data}}
    description = data.get("comfyvn_description", "")
    raw_bindings = sidecar if sidecar is not None else data.get("comfyvn_bindings")
    if isinstance(raw_bindings, dict) and "comfyvn_bindings" in raw_bindings:
        raw_bindings = raw_bindings["comfyvn_bindings"]
    graph: dict[str, Any] = {}
    for node_id, node in data.items():
        if node_id in RESERVED:
            continue
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise Invalid(
                f"workflow {name!r}: node {clip(str(node_id))} has no class_type",
                field="graph",
                code="invalid_workflow",
            )
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise Invalid(f"workflow {name!r}: node {node_id} inputs must be an object", code="invalid_workflow")
        # Some exporters write link sources as numbers; ComfyUI looks nodes up by their string ids.
        fixed = {k: [str(v[0]), v[1]] if _is_link(v) else v for k, v in inputs.items()}
        graph[str(node_id)] = {**node, "inputs": fixed}
    if not graph:
        raise Invalid(f"workflow {name!r} has no nodes", field="graph", code="invalid_workflow")
    if len(graph) > MAX_NODES:
        raise TooLarge(f"workflow {name!r} has more than {MAX_NODES} nodes", field="graph")
    bindings = _parse_bindings(raw_bindings, graph, name)
    return Workflow(name=name, graph=graph, bindings=bindings, description=str(description)[:500])


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


def _parse_bindings(raw: Any, graph: Mapping[str, Any], name: str) -> Bindings:
    if raw is None:
        raise Invalid(
            f"workflow {name!r} has no comfyvn_bindings (in the file or in {name}.bindings.json): name where "
            "prompt, negative, seed, width, height, checkpoint... go, as binding -> [[node_id, input_name], ...]",
            field="comfyvn_bindings",
            code="missing_bindings",
        )
    if not isinstance(raw, dict):
        raise Invalid(f"workflow {name!r}: comfyvn_bindings must be an object", field="comfyvn_bindings")
    bindings: Bindings = {}
    for key, targets in raw.items():
        field = f"comfyvn_bindings.{clip(str(key), 40)}"
        if not isinstance(key, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key):
            raise Invalid(
                f"workflow {name!r}: binding name {clip(str(key))!r} is not a lowercase identifier", field=field
            )
        if not isinstance(targets, list) or not targets:
            raise Invalid(
                f"workflow {name!r}: binding {key!r} must be a non-empty list of [node_id, input]", field=field
            )
        pairs: list[tuple[str, str]] = []
        for target in targets:
            if not (
                isinstance(target, list | tuple) and len(target) == 2 and all(isinstance(t, str | int) for t in target)
            ):
                raise Invalid(
                    f"workflow {name!r}: binding {key!r} has a target that is not [node_id, input]", field=field
                )
            node_id, input_name = str(target[0]), str(target[1])
            if node_id not in graph:
                raise Invalid(
                    f"workflow {name!r}: binding {key!r} names node {clip(node_id)} it does not have", field=field
                )
            if key == "loras":
                _lora_slots(input_name, name)
            elif _is_link(graph[node_id]["inputs"].get(input_name)):
                raise Invalid(
                    f"workflow {name!r}: binding {key!r} targets node {node_id} input {clip(input_name)!r}: a link",
                    field=field,
                )
            pairs.append((node_id, input_name))
        bindings[key] = pairs
    return bindings


def _lora_slots(spec: str, name: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}),(\d{1,2})", spec or "0,1")
    if match is None:
        raise Invalid(f'workflow {name!r}: the loras binding wants [node_id, "MODEL_SLOT,CLIP_SLOT"]', field="loras")
    return int(match.group(1)), int(match.group(2))


# -- binding ------------------------------------------------------------------------------------------------------


def bind(workflow: Workflow, params: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh graph with ``params`` written into the bound inputs and LoRAs chained in; the template is untouched.

    Known params: ``PARAMS`` (``loras`` is a list of ``{name, strength_model, strength_clip}`` mappings or objects
    with those attributes); a workflow may bind further names of its own (scalars). A known param the workflow does
    not bind is ignored; an unknown one is refused, as is a ``null`` template input left unbound.
    """
    graph = copy.deepcopy(workflow.graph)
    allowed = set(PARAMS) | set(workflow.bindings)
    for key in params:
        if key not in allowed:
            raise Invalid(
                f"unknown render parameter {clip(str(key))!r} for workflow {workflow.name!r}",
                field=f"params.{clip(str(key), 40)}",
                code="unknown_param",
            )
    for key, targets in workflow.bindings.items():
        if key == "loras" or key not in params or params[key] is None:
            continue
        value = _coerce(key, params[key])
        for node_id, input_name in targets:
            graph[node_id]["inputs"][input_name] = value
    loras = params.get("loras") or ()
    if loras:
        if "loras" in workflow.bindings:
            source, spec = workflow.bindings["loras"][0]
        else:
            loaders = [k for k, n in graph.items() if n["class_type"] == "CheckpointLoaderSimple"]
            if len(loaders) != 1:
                raise Invalid(
                    f"workflow {workflow.name!r} has no loras binding and not exactly one CheckpointLoaderSimple",
                    field="params.loras",
                    code="loras_unbindable",
                )
            source, spec = loaders[0], "0,1"
        _chain_loras(graph, source, _lora_slots(spec, workflow.name), _lora_entries(loras))
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if value is None:
                wanted = [k for k, targets in workflow.bindings.items() if (node_id, input_name) in targets]
                field = wanted[0] if wanted else f"{node_id}.{input_name}"
                raise Invalid(
                    f"workflow {workflow.name!r} needs {field!r} (node {node_id} input {input_name!r})",
                    field=f"params.{field}",
                    code="missing_param",
                )
    return graph


def _coerce(key: str, value: Any) -> Any:
    field = f"params.{key}"
    if key in ("prompt", "negative"):
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise Invalid(f"{key} must be text of at most {MAX_TEXT} characters", field=field)
        return value
    if key in ("seed", "width", "height", "steps"):
        low, high = {"seed": (0, 2**64 - 1), "width": (16, 16384), "height": (16, 16384), "steps": (1, 1000)}[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"{key} must be an integer from {low} to {high}", field=field)
        return value
    if key in ("denoise", "cfg"):
        top = 1.0 if key == "denoise" else 100.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= top:
            raise Invalid(f"{key} must be a number from 0 to {top:g}", field=field)
        return float(value)
    if key in ("checkpoint", "sampler", "scheduler", "init_image", "filename_prefix"):
        if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
            raise Invalid(f"{key} must be a non-empty name of at most 255 characters", field=field)
        if key == "filename_prefix" and (value.startswith(("/", "\\")) or ".." in value.replace("\\", "/").split("/")):
            raise Invalid("filename_prefix must stay inside the server's output folder", field=field)
        return value
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise Invalid(f"{key} must be a finite number", field=field)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise Invalid(f"{key} is longer than {MAX_TEXT} characters", field=field)
        return value
    raise Invalid(f"{key} must be a string, number or boolean", field=field)


def _lora_entries(loras: Any) -> list[tuple[str, float, float]]:
    if isinstance(loras, str | bytes | Mapping) or not hasattr(loras, "__iter__"):
        raise Invalid("loras must be a list of {name, strength_model, strength_clip}", field="params.loras")
    entries = []
    for index, entry in enumerate(loras):
        field = f"params.loras[{index}]"
        get = entry.get if isinstance(entry, Mapping) else lambda key, default=None, e=entry: getattr(e, key, default)
        name = get("name")
        if not isinstance(name, str) or not name or len(name) > 255:
            raise Invalid("a LoRA needs a name (the file name the server lists)", field=f"{field}.name")
        strengths = []
        for key in ("strength_model", "strength_clip"):
            value = get(key, 1.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not -100.0 <= float(value) <= 100.0:
                raise Invalid(f"{key} must be a number from -100 to 100", field=f"{field}.{key}")
            strengths.append(float(value))
        entries.append((name, strengths[0], strengths[1]))
    if len(entries) > MAX_LORAS:
        raise TooLarge(f"at most {MAX_LORAS} LoRAs per render", field="params.loras")
    return entries


def _chain_loras(
    graph: dict[str, Any], source: str, slots: tuple[int, int], loras: list[tuple[str, float, float]]
) -> None:
    """Insert LoraLoader nodes after ``source`` and move its MODEL/CLIP consumers to the end of the chain."""
    model_slot, clip_slot = slots
    consumers = [
        (node_id, input_name, value[1])
        for node_id, node in graph.items()
        for input_name, value in node["inputs"].items()
        if _is_link(value) and value[0] == source and value[1] in slots
    ]
    numeric = [int(k) for k in graph if k.isdigit()]
    next_id = max(numeric, default=0) + 1
    model_link: list[Any] = [source, model_slot]
    clip_link: list[Any] = [source, clip_slot]
    for name, strength_model, strength_clip in loras:
        while str(next_id) in graph:
            next_id += 1
        node_id = str(next_id)
        graph[node_id] = {
            "class_type": "LoraLoader",
            "_meta": {"title": f"LoRA {name}"},
            "inputs": {
                "model": model_link,
                "clip": clip_link,
                "lora_name": name,
                "strength_model": strength_model,
                "strength_clip": strength_clip,
            },
        }
        model_link, clip_link = [node_id, 0], [node_id, 1]
    for node_id, input_name, slot in consumers:
        graph[node_id]["inputs"][input_name] = list(model_link if slot == model_slot else clip_link)


# -- checking against /object_info --------------------------------------------------------------------------------


def check_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """What the server would refuse in ``graph``: unknown classes, missing or ill-typed inputs, links to missing
    nodes or output slots, values outside a node's list (a checkpoint or LoRA the server lacks) or bounds, cycles,
    and a graph without an output node. Empty when the server should accept it."""
    problems: list[str] = []
    if not isinstance(graph, Mapping) or not graph:
        return ["the graph is empty or not an object of nodes"]
    has_output = False
    for node_id, node in graph.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            problems.append(f"node {clip(str(node_id))}: no class_type")
            continue
        class_type = node["class_type"]
        spec = object_info.get(class_type)
        label = f"node {clip(str(node_id))} ({clip(class_type)})"
        if not isinstance(spec, Mapping):
            problems.append(f"{label}: the server has no node class {clip(class_type)!r}")
            continue
        has_output = has_output or bool(spec.get("output_node"))
        inputs: Mapping[str, Any] = node["inputs"] if isinstance(node.get("inputs"), Mapping) else {}
        declared: Mapping[str, Any] = spec.get("input") or {}
        for section in ("required", "optional"):
            for input_name, info in (declared.get(section) or {}).items():
                if input_name not in inputs:
                    if section == "required":
                        problems.append(f"{label}: required input {input_name!r} is missing")
                    continue
                problem = _check_input(graph, object_info, inputs[input_name], info)
                if problem:
                    problems.append(f"{label}: input {input_name!r} {problem}")
    if not has_output and not problems:
        problems.append("the graph has no output node (such as SaveImage)")
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(f"the graph has a cycle through node {clip(cycle)}")
    return problems


def _check_input(graph: Mapping[str, Any], object_info: Mapping[str, Any], value: Any, info: Any) -> str | None:
    kind = info[0] if isinstance(info, list | tuple) and info else info
    options = info[1] if isinstance(info, list | tuple) and len(info) > 1 and isinstance(info[1], Mapping) else {}
    if isinstance(value, list):
        if not _is_link(value):
            return "is a malformed link (want [node_id, output_index])"
        source = graph.get(str(value[0]))
        if not isinstance(source, Mapping):
            return f"links to node {clip(str(value[0]))}, which is not in the graph"
        source_spec = object_info.get(str(source.get("class_type")))
        if not isinstance(source_spec, Mapping):
            return None  # the unknown source class is reported on its own node
        outputs = source_spec.get("output") or []
        if not 0 <= value[1] < len(outputs):
            return f"links to output {value[1]} of node {value[0]}, which has {len(outputs)} outputs"
        if isinstance(kind, str) and kind not in ("*", "COMBO") and outputs[value[1]] not in ("*", kind):
            return f"wants {kind} but node {value[0]} output {value[1]} is {outputs[value[1]]}"
        return None
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"must be a number, got {clip(repr(value), 40)}"
        try:
            number: float = int(value) if kind == "INT" else float(value)
        except ValueError:
            return f"must be {kind}, got {clip(repr(value), 40)}"
        if "min" in options and number < options["min"]:
            return f"is {number}, below the minimum {options['min']}"
        if "max" in options and number > options["max"]:
            return f"is {number}, above the maximum {options['max']}"
        return None
    choices = kind if isinstance(kind, list) else options.get("options") if kind == "COMBO" else None
    # Uploadable inputs (LoadImage) are checked by the server against its files, subfolders included, not this list.
    if isinstance(choices, list) and not options.get("image_upload") and value not in choices:
        listed = ", ".join(clip(str(c), 60) for c in choices[:8]) + (", ..." if len(choices) > 8 else "")
        return f"is {clip(repr(value), 80)}, which the server does not offer (it has: {listed or 'nothing'})"
    if kind in ("STRING",) and not isinstance(value, str | int | float):
        return f"must be text, got {clip(repr(value), 40)}"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"must be true or false, got {clip(repr(value), 40)}"
    return None


def _find_cycle(graph: Mapping[str, Any]) -> str | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node_id: str) -> str | None:
        stack = [(node_id, iter(_links(graph, node_id)))]
        state[node_id] = 1
        while stack:
            current, pending = stack[-1]
            for nxt in pending:
                if state.get(nxt) == 1:
                    return nxt
                if nxt not in state and nxt in graph:
                    state[nxt] = 1
                    stack.append((nxt, iter(_links(graph, nxt))))
                    break
            else:
                state[current] = 2
                stack.pop()
        return None

    for node_id in graph:
        if node_id not in state:
            found = visit(node_id)
            if found:
                return found
    return None


def _links(graph: Mapping[str, Any], node_id: str) -> list[str]:
    node = graph.get(node_id)
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return []
    return [str(v[0]) for v in inputs.values() if _is_link(v)]
