"""Loading tokenizers and causal LMs by hub id, local directory or built-in name.

``resolve_model_path`` turns what the user typed into something ``from_pretrained`` accepts
(``tiny-instruct``/``tiny-base`` become the pair shipped inside the package) and fails early,
before any weights load, for a local path that does not exist. ``load_model`` returns the model
in eval mode on the requested device and dtype together with the facts a manifest records.
This module does not check that two models form a pair; see ``pair``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import CoditError, ConfigError, ModelError

log = logging.getLogger(__name__)

TINY_MODELS_DIR = Path(__file__).resolve().parent.parent / "tiny" / "models"
TINY_NAMES = ("tiny-instruct", "tiny-base")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def device_problems(device: str | None, base_device: str | None) -> list[str]:
    """The ``--device`` and ``--base-device`` values that name no device (for a config check)."""
    return [
        f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}"
        for name, value in (("--device", device), ("--base-device", base_device))
        if value is not None and value not in DEVICES and not value.startswith("cuda:")
    ]


@dataclass
class LoadedModel:
    """A causal LM ready for decoding, and where it came from."""

    name: str
    path: str
    model: Any  # transformers.PreTrainedModel
    device: Any  # torch.device
    info: dict[str, Any]


def resolve_model_path(name: str) -> str:
    """Map a model argument to a local directory or a hub id.

    Args:
        name: ``tiny-instruct``/``tiny-base``, a local directory, or a hub id (``org/model``).

    Raises:
        ModelError: a built-in name whose files are missing, a local path that does not exist
            or is not a model directory.
    """
    if name in TINY_NAMES:
        path = TINY_MODELS_DIR / name
        if not (path / "config.json").is_file():
            raise ModelError(
                f"the built-in model {name!r} is missing from {path}; rebuild it with `codit tiny build`"
            )
        return str(path)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{name} is a directory but holds no config.json, so it is not a model"
            )
        return str(path)
    if path.exists():
        raise ModelError(f"{name} is a file; give the model's directory or a hub id")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local:
        raise ModelError(f"no model directory at {name}")
    return name  # a hub id; from_pretrained will fetch or read it from the local cache


def resolve_device(device: str) -> Any:
    """``auto`` -> CUDA when available, else CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device} was asked for but CUDA is not available here; use --device cpu"
        )
    return torch.device(device)


def resolve_dtype(dtype: str, device: Any) -> Any:
    """``auto`` -> bfloat16 on CUDA, float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _hub_error(name: str, err: Exception) -> ModelError:
    if "trust_remote_code" in str(err):
        return remote_code_error(name)
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelError(f"could not load {name!r}: {reason}")


def remote_code_error(name: str) -> ModelError:
    return ModelError(
        f"{name!r} ships its own model code, which codit does not run unless asked; "
        "pass --trust-remote-code if you trust its authors"
    )


def refuse_remote_code(name: str, path: str, trust_remote_code: bool) -> None:
    """Fail before transformers sees a local model whose config points at code in its folder."""
    config = Path(path) / "config.json"
    if trust_remote_code or not config.is_file():
        return  # hub ids: transformers refuses, and ``_hub_error`` words it the same way
    import json

    try:
        auto_map = json.loads(config.read_text()).get("auto_map")
    except (OSError, ValueError):
        return
    if auto_map:
        raise remote_code_error(name)


def load_tokenizer(name: str, trust_remote_code: bool = False) -> Any:
    """Load the tokenizer of a model (built-in name, directory or hub id)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    refuse_remote_code(name, path, trust_remote_code)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as err:  # transformers raises many types (OSError, ValueError, ...)
        raise _hub_error(name, err) from err


def load_config(name: str, trust_remote_code: bool = False) -> Any:
    """Load a model's config only: cheap, so bad model arguments fail before any weights load."""
    from transformers import AutoConfig

    path = resolve_model_path(name)
    refuse_remote_code(name, path, trust_remote_code)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise _hub_error(name, err) from err


def load_model(
    name: str,
    device: str | Any = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    device_map: str | None = None,
) -> LoadedModel:
    """Load a causal LM for inference, its weights straight onto the device in the dtype.

    The checkpoint is read tensor by tensor onto the target device (with ``pread`` where it
    can be, see ``read_by_pread``), so host memory never holds a second copy of the weights.

    Args:
        name: built-in name, local directory or hub id.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (or a ``torch.device``).
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``float32``, ``bfloat16`` or ``float16``.
        trust_remote_code: run code shipped with the model; only when the user asked for it.
        device_map: ``auto`` spreads the model's layers over every visible GPU (then the CPU)
            when it does not fit one; None puts it whole on ``device``.
    """
    import torch

    path = resolve_model_path(name)
    refuse_remote_code(name, path, trust_remote_code)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    placement: Any = device_map if device_map else {"": str(dev)}
    try:
        model = _from_pretrained(name, path, torch_dtype, placement, trust_remote_code)
    except CoditError:
        raise
    except Exception as err:
        raise _hub_error(name, err) from err
    model.eval()
    first = model.get_input_embeddings().weight.device  # where the input ids go
    info = {
        "name": name,
        "path": path,
        "revision": getattr(model.config, "_commit_hash", None),
        "fingerprint": fingerprint(path),
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(torch_dtype).removeprefix("torch."),
        "device": str(first),
    }
    spread = getattr(model, "hf_device_map", None)
    if device_map and spread:
        info["device_map"] = sorted({str(d) for d in spread.values()})
    log.info("loaded %s from %s on %s (%s)", name, path, info["device"], info["dtype"])
    return LoadedModel(name=name, path=path, model=model, device=first, info=info)


def _from_pretrained(
    name: str, path: str, dtype: Any, placement: Any, trust_remote_code: bool
) -> Any:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoModelForCausalLM

    with contextlib.ExitStack() as files:
        config = load_config(name, trust_remote_code)
        try:
            model_class: Any = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
            weights = read_by_pread(path, files)
        except KeyError:  # model code shipped with the checkpoint: transformers reads it all
            weights = None
        if weights is None:
            return AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype, device_map=placement, trust_remote_code=trust_remote_code
            )
        # the same loading as from the folder, fed tensors that are read, not memory-mapped
        model = model_class.from_pretrained(
            None, config=config, state_dict=weights, dtype=dtype, device_map=placement
        )
    model.config.name_or_path = path
    if (Path(path) / "generation_config.json").is_file():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(path)
    return model


def read_by_pread(path: str, files: contextlib.ExitStack) -> dict[str, Any] | None:
    """A local safetensors checkpoint as lazy tensors that read their bytes with ``pread(2)``.

    Why: transformers 5 memory-maps every shard and keeps them mapped until the last tensor is
    placed, so every checkpoint page it touched stays resident beside the loaded weights; a
    float32 load of a bfloat16 checkpoint peaked at 1.5x the weights (1x float32 plus 0.5x
    mapped bfloat16 pages). Read with ``pread``, a tensor's bytes live only until they are
    cast and placed, and the peak is the weights plus the few tensors in flight.

    Returns:
        name -> lazy slice, the shards held open by ``files``; None where this does not apply
        (a hub id, ``.bin`` weights, transformers 4, which reads and closes one shard at a
        time, or a safetensors without the ``backend`` option), and transformers reads the
        checkpoint itself.
    """
    import transformers

    shards = checkpoint_shards(path)
    if not shards or int(transformers.__version__.split(".")[0]) < 5:
        return None
    from safetensors import safe_open

    try:
        handles = [
            files.enter_context(safe_open(str(f), framework="pt", device="cpu", backend="pread"))
            for f in shards
        ]
    except TypeError:  # safetensors before the pread backend
        return None
    return {key: h.get_slice(key) for h in handles for key in h.keys()}  # noqa: SIM118 (not a dict)


def checkpoint_shards(path: str) -> list[Path]:
    """The safetensors files ``from_pretrained`` reads from a local model directory, else [].

    The index names them when the checkpoint is sharded (a folder may hold other safetensors,
    e.g. Mistral's ``consolidated.safetensors``, that the model does not read).
    """
    import json

    root = Path(path)
    index = root / "model.safetensors.index.json"
    if index.is_file():
        return [root / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    single = root / "model.safetensors"
    return [single] if single.is_file() else []


def fingerprint(path: str) -> str | None:
    """A short content hash of a local model directory (config and weight files), else None."""
    root = Path(path)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(root.iterdir()):
        if file.suffix in {".json", ".safetensors", ".bin"} and file.is_file():
            digest.update(file.name.encode())
            digest.update(str(file.stat().st_size).encode())
            with file.open("rb") as handle:
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def eos_ids(name: str, tokenizer: Any, model: Any | None = None) -> list[int]:
    """The instruct model's stop ids: its generation config's EOS ids, else the tokenizer's."""
    ids: Any = None
    if model is not None and getattr(model, "generation_config", None) is not None:
        ids = model.generation_config.eos_token_id
    if ids is None:
        try:
            from transformers import GenerationConfig

            ids = GenerationConfig.from_pretrained(resolve_model_path(name)).eos_token_id
        except Exception:
            ids = None
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        raise ModelError(f"{name!r} defines no EOS token, so generation could never stop")
    return sorted({int(i) for i in (ids if isinstance(ids, list | tuple) else [ids])})
