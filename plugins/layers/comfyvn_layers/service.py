"""The layers plugin's use cases between the edges (routes, CLI, the job body) and the pipeline.

Where a split's files go (the convention the Ren'Py exporter reads): a store project's background
``<dir>/<stem>.<ext>`` is split into ``<dir>/<stem>.layers/`` inside the project; an asset or an upload
into ``<data>/plugins/layers/splits/<job id>/``. Uploads are kept as
``<data>/plugins/layers/uploads/<sha256>/<name>`` before anything parses them. Nothing here returns an
absolute server path: folders are named relative to their project or to the plugin's folder.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from comfyvn.errors import Invalid, NotFound, TooLarge, Unprocessable
from comfyvn.paths import atomic_write_bytes, safe_join
from comfyvn.wire import loads

from .jobs import KIND, check_split_params
from .settings import SETUP_HINT, LayersSettings

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = [
    "FLAG",
    "IMAGE_SUFFIXES",
    "LAYERS_FILE",
    "MAX_UPLOAD_BYTES",
    "RUNTIME_HINT",
    "available_providers",
    "check_picture",
    "default_out",
    "gpu_offered",
    "keep_upload",
    "model_status",
    "run_split_job",
    "runtime_version",
    "split_file",
    "split_status",
    "submit_split",
]

FLAG = "enable_flat2layers"
PLUGIN = "layers"
LAYERS_FILE = "layers.json"
UPLOADS_DIR, SPLITS_DIR = "uploads", "splits"
MAX_UPLOAD_BYTES = 64 * 2**20
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
RUNTIME_HINT = "no ONNX Runtime installed: pip install 'comfyvn-layers[cpu]' (or [gpu])"
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_GPU_PROVIDERS = frozenset(
    {
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "CoreMLExecutionProvider",
        "DmlExecutionProvider",
    }
)
Report = Callable[[float, str], None]


# -- runtime facts ---------------------------------------------------------------------------------------
def available_providers() -> list[str]:
    """The execution providers this ONNX Runtime lists ([] when none is installed)."""
    from .runtime import available_providers as listed

    try:
        return listed()
    except Unprocessable:
        return []


def runtime_version() -> str | None:
    """The installed ONNX Runtime's version, or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


def gpu_offered() -> bool:
    """Whether this machine's ONNX Runtime lists a GPU provider (onnxruntime-gpu lists CUDA even where
    CUDA then fails to load: the split still reports the provider that really ran)."""
    return bool(_GPU_PROVIDERS & set(available_providers()))


def model_status(kernel: Kernel, *, model: str | None = None) -> dict[str, Any]:
    """The configured (or given) model's inputs and outputs, and the providers available here;
    ``configured: false`` with how to get a model when there is none."""
    settings = LayersSettings.from_kernel(kernel, model=model)
    runtime = {"version": runtime_version(), "providers": available_providers()}
    answer: dict[str, Any] = {"ok": True, "runtime": runtime, "device": settings.device}
    if runtime["version"] is None:
        answer["runtime_hint"] = RUNTIME_HINT
    if settings.model is None:
        return {**answer, "configured": False, "hint": SETUP_HINT}
    from .model import inspect_model

    info = inspect_model(settings.require_model())
    return {**answer, "configured": True, "source": settings.where(), "model": info.describe()}


# -- sources and folders ---------------------------------------------------------------------------------
def default_out(image: Path) -> Path:
    """``<dir>/<stem>.layers`` for ``<dir>/<stem>.<ext>``: where the exporter looks for a layered background."""
    return image.with_name(f"{image.stem}.layers")


def _upload_name(filename: str | None) -> str:
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")[:100]
    return safe if safe and _FILE_NAME.match(safe) else "upload"


def keep_upload(kernel: Kernel, stream: IO[bytes], filename: str | None) -> dict[str, str]:
    """Keep an uploaded picture (at most `MAX_UPLOAD_BYTES`, else `TooLarge`) as
    ``uploads/<sha256>/<name>`` before anything parses it; returns the job source ``{upload, name}``."""
    digest, size, chunks = hashlib.sha256(), 0, []
    while chunk := stream.read(2**20):
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise TooLarge(f"the file is larger than the {MAX_UPLOAD_BYTES} bytes allowed", field="file")
        digest.update(chunk)
        chunks.append(chunk)
    if not size:
        raise Invalid("the uploaded file is empty", field="file", code="empty_upload")
    sha, name = digest.hexdigest(), _upload_name(filename)
    kept = kernel.paths.plugin_dir(PLUGIN) / UPLOADS_DIR / sha / name
    if not kept.is_file():
        atomic_write_bytes(kept, b"".join(chunks))
    return {"upload": sha, "name": name}


def _project_background(kernel: Kernel, source: Mapping[str, str]) -> tuple[Path, Path]:
    from comfyvn_scenario import ProjectStore

    folder = ProjectStore.for_kernel(kernel).path(source["project"], field="source.project")
    image = safe_join(folder, source["background"], field="source.background")
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        raise Invalid(
            f"background must be a {', '.join(sorted(IMAGE_SUFFIXES))} file",
            field="source.background",
            code="not_an_image",
        )
    if not image.is_file():
        raise NotFound(
            "the project has no such background file", field="source.background", code="background_not_found"
        )
    return folder, image


def source_file(kernel: Kernel, source: Mapping[str, str]) -> Path:
    """The picture a job source names (`NotFound` when it is gone)."""
    if "asset" in source:
        from comfyvn_assets import AssetRegistry

        return AssetRegistry.for_kernel(kernel).file_path(source["asset"])
    if "project" in source:
        return _project_background(kernel, source)[1]
    if not _FILE_NAME.match(source.get("name", "")):
        raise Invalid("name is a file name", field="source.name", code="invalid_params")
    kept = safe_join(kernel.paths.plugin_dir(PLUGIN) / UPLOADS_DIR, source["upload"], source["name"], field="source")
    if not kept.is_file():
        raise NotFound("the uploaded file is no longer kept; upload it again", field="source", code="upload_gone")
    return kept


def output_dir(kernel: Kernel, job_id: str, source: Mapping[str, str]) -> tuple[Path, str]:
    """Where the split of ``source`` by job ``job_id`` goes, and how answers name that folder."""
    if "project" in source:
        folder, image = _project_background(kernel, source)
        out = default_out(image)
        return out, f"{source['project']}:{out.relative_to(folder).as_posix()}"
    out = safe_join(kernel.paths.plugin_dir(PLUGIN) / SPLITS_DIR, job_id, field="id")
    return out, f"{SPLITS_DIR}/{job_id}"


def check_picture(path: Path) -> tuple[int, int]:
    """``(width, height)`` read from the picture's header only, so a bad upload or a picture too large is
    answered at once (422 ``invalid_image`` / 413), not by a failed job."""
    from PIL import Image

    from .pipeline import MAX_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise TooLarge(f"the picture is over {MAX_PIXELS // 1_000_000} megapixels", field="image") from None
    except (OSError, ValueError):
        raise Unprocessable(
            "the file is not a readable picture (PNG, JPEG, WebP)", field="image", code="invalid_image"
        ) from None
    if width * height > MAX_PIXELS:
        raise TooLarge(f"the picture is {width} x {height}: over {MAX_PIXELS // 1_000_000} megapixels", field="image")
    return width, height


# -- the job ---------------------------------------------------------------------------------------------
def submit_split(kernel: Kernel, params: Mapping[str, Any]) -> dict[str, Any]:
    """Queue a ``layers.split`` job after checking what can be checked now (flag, params, source, the
    configured model); returns the job record. A GPU device asks for ``GPU=1`` where one is offered."""
    from comfyvn_jobs import jobs_for

    from .model import inspect_model

    kernel.flags.require(FLAG)
    settings = LayersSettings.from_kernel(kernel)
    clean = check_split_params({"device": settings.device, **params})
    inspect_model(settings.require_model())  # a missing or bad model answers now (404 / 422), not in a job
    check_picture(source_file(kernel, clean["source"]))
    # Only where this machine offers GPU=1 (`plugin.jobs_embedded_resources`): asked elsewhere, no worker could
    # ever take the job; there the split runs on CPU and its warning says why.
    resources = {"GPU": 1.0} if clean["device"] != "cpu" and gpu_offered() else {}
    service = jobs_for(kernel)
    return service.get(service.submit(KIND, clean, resources=resources))


def run_split_job(kernel: Kernel, job_id: str, params: dict[str, Any], *, report: Report) -> dict[str, Any]:
    """Split the job's source into its folder with the configured model; progress follows the planes."""
    from .pipeline import split_image

    kernel.flags.require(FLAG)
    model = LayersSettings.from_kernel(kernel).require_model()
    image = source_file(kernel, params["source"])
    out, folder = output_dir(kernel, job_id, params["source"])
    count = int(params["planes"])
    report(0.0, "estimating depth")

    def emit(event: str, payload: dict[str, Any]) -> None:
        kernel.events.emit(event, {**payload, "split": job_id})
        index = payload.get("index")
        # Masks and planes come in turns (mask 0, plane 0, mask 1, ...): depth is done by the first mask.
        if event == "on_mask_ready" and isinstance(index, int):
            report(min(0.1 + 0.85 * (index + 0.5) / count, 0.95), f"mask {index + 1}/{count}")
        elif event == "on_plane_exported" and isinstance(index, int):
            report(min(0.1 + 0.85 * (index + 1) / count, 0.95), f"plane {index + 1}/{count}")

    doc = split_image(
        image,
        model,
        out,
        planes=count,
        method=params["method"],
        device=params["device"],
        feather=params["feather"],
        emit=emit,
    )
    report(1.0, f"{len(doc['planes'])} planes on {doc['provider']}")
    return {"folder": folder, "planes": len(doc["planes"]), "provider": doc["provider"], "warnings": doc["warnings"]}


def _record(kernel: Kernel, job_id: str) -> dict[str, Any]:
    from comfyvn_jobs import jobs_for

    kernel.flags.require(FLAG)
    record = jobs_for(kernel).get(job_id)
    if record["kind"] != KIND:
        raise NotFound(f"no layers split {job_id[:80]!r}", field="id", code="split_not_found")
    return record


def _files(doc: Mapping[str, Any]) -> list[str]:
    names = [LAYERS_FILE, doc.get("depth_map"), *(p.get("file") for p in doc.get("planes", []))]
    return [n for n in names if isinstance(n, str) and _FILE_NAME.match(n)]


def split_status(kernel: Kernel, job_id: str) -> dict[str, Any]:
    """A split's job status; once done, its layers.json and the names of its files."""
    record = _record(kernel, job_id)
    answer: dict[str, Any] = {
        "id": record["id"],
        "status": record["status"],
        "progress": record["progress"],
        "message": record["message"],
        "params": record["params"],
    }
    if record["error"] is not None:
        answer["error"] = record["error"]
    if record["status"] == "done":
        out, folder = output_dir(kernel, record["id"], record["params"]["source"])
        try:
            doc = loads((out / LAYERS_FILE).read_bytes(), field=LAYERS_FILE)
        except FileNotFoundError:
            raise NotFound("the split's files are gone", field="id", code="split_files_gone") from None
        answer.update(folder=folder, layers=doc, files=_files(doc))
    return answer


def split_file(kernel: Kernel, job_id: str, name: str) -> Path:
    """One file of a finished split (layers.json, the depth map or a plane), by its name in layers.json."""
    status = split_status(kernel, job_id)
    if status["status"] != "done":
        raise NotFound(f"the split is {status['status']}, not done", field="id", code="split_not_done")
    if name not in status["files"]:
        raise NotFound("the split has no such file", field="name", code="file_not_found")
    out, _ = output_dir(kernel, job_id, status["params"]["source"])
    path = safe_join(out, name, field="name")
    if not path.is_file():
        raise NotFound("the split's files are gone", field="name", code="split_files_gone")
    return path
