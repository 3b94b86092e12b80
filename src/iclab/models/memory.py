"""How much memory a run will need, estimated from its config before anything is allocated.

A transformer of ``L`` layers, width ``d``, MLP width ``m``, ``H`` heads and vocabulary ``V``
has about ``P = 2 V d + L (4 d² + k d m)`` parameters (``k`` = 3 for llama's gated MLP, 2 for
GPT-2's; GPT-2 adds a position table of ``max_len · d``). Training with AdamW in fp32 holds
16 bytes a parameter (weights, gradients, two moments). A training step of ``B`` sequences
of ``T`` tokens keeps for the backward pass, per layer, about ``12 B T d + 3 B T m`` floats
plus the attention pattern ``B H T²`` (not on a GPU, whose fused attention keeps none), and
``3 B T V`` floats of logits and their softmax; on a GPU under bf16 autocast they take two
bytes each instead of four. A probe runs without gradients on ``B_p`` prompts of ``T_p``
tokens at once and may cache every layer's stream (and pattern, for probes that read
attention): ``B_p T_p (L (4 d + H T_p) + 2 V)`` floats. The Python process itself (torch,
transformers) takes about half a GiB.

The estimate is rough (within a factor of about two of the peak a run reaches, measured
on training steps on the CPU) and meant
to refuse what cannot fit at all, such as a typo of a few zeros in a batch size, in one
line that gives the estimate and the machine's memory. :func:`check_fits` compares it with
the memory available on this machine, or with the GPU's when the run trains on CUDA.
``ICLAB_MEMORY_LIMIT`` replaces the machine's memory (``"8GiB"``, ``"500MB"``, bytes), and
``ICLAB_MEMORY_LIMIT=off`` turns the check off.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from iclab.errors import ConfigError

FP32 = 4
#: what the Python process with torch and transformers loaded takes before any model
RUNTIME = 512 * 2**20


@dataclass(frozen=True)
class Footprint:
    """Bytes a run needs at its peak, by part (``weights``, ``gradients``, ``optimizer``,
    ``activations``, ``probes``), and the settings that drive it (named in the message)."""

    parts: dict[str, int]
    device: str = "cpu"
    knobs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts.items() if v)
        return f"about {format_bytes(self.total)} ({parts})"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """``"8GiB"``, ``"500 MB"``, ``"1e9"`` → bytes (GiB and GB both count 1024³)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtTpP]?)i?[bB]?\s*", text)
    if not m:
        raise ConfigError(f"ICLAB_MEMORY_LIMIT = {text!r}: give bytes, e.g. 8GiB or 500MB, or 'off'")
    scale = 1024 ** " KMGTP".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * scale)


def transformer_params(n_layers: int, d_model: int, mlp_width: int, vocab: int, family: str = "llama",
                       max_len: int = 0) -> int:
    """Parameter count of a causal LM of this shape (embedding and unembedding untied)."""
    mlp = (3 if family in ("llama", "mistral") else 2) * d_model * mlp_width
    per_layer = 4 * d_model * d_model + mlp + 4 * d_model
    pos = max_len * d_model if family == "gpt2" else 0
    return 2 * vocab * d_model + n_layers * per_layer + pos + d_model


def training_footprint(spec, vocab: int, seq_len: int, batch_size: int, *, probe_batch: int = 0,
                       probe_seq: int = 0, probe_patterns: bool = False, stored_floats: int = 0,
                       extra_params: int = 0, device: str = "cpu", precision: str = "auto",
                       knobs: tuple[str, ...] = ()) -> Footprint:
    """The footprint of training ``spec`` (a :class:`~iclab.models.build.ModelSpec`) on batches of
    ``batch_size`` sequences of ``seq_len`` tokens over ``vocab`` tokens, with probes on
    ``probe_batch`` prompts of ``probe_seq`` tokens at once (``probe_patterns``: that read every
    layer's attention pattern) that keep ``stored_floats`` floats (e.g. every prompt's hidden
    states). ``extra_params``: parameters outside the transformer (a read-in layer).
    ``device`` and ``precision`` are the run's (``train.precision``)."""
    d, m, h, layers = spec.d_model, spec.mlp_width, spec.n_heads, spec.n_layers
    params = transformer_params(layers, d, m, vocab, spec.family, spec.max_len) + extra_params
    b, t = batch_size, seq_len
    gpu = device == "cuda"
    attn_t = 0 if gpu else min(t, spec.window) if spec.window else t
    act = b * t * (layers * (12 * d + 3 * m + h * attn_t) + 3 * vocab)
    act_bytes = 2 if gpu and precision in ("auto", "bf16") else FP32
    pattern = h * probe_seq if probe_patterns else 0
    probe = probe_batch * probe_seq * (layers * (4 * d + pattern) + 2 * vocab) + stored_floats
    return Footprint({"runtime": RUNTIME, "weights": FP32 * params, "gradients": FP32 * params,
                      "optimizer": 2 * FP32 * params, "activations": act_bytes * act, "probes": FP32 * probe},
                     device, knobs)


_FLOATS = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}  # loaded at the model's dtype
_STORED = {"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}  # kept as stored


def _safetensors_elements(path: Path) -> dict[str, int] | None:
    """Elements per stored dtype of a ``.safetensors`` file, from its header (None if it cannot be
    read)."""
    from safetensors import SafetensorError, safe_open

    out: dict[str, int] = {}
    try:
        with safe_open(path, framework="numpy") as f:
            for name in f.keys():
                t = f.get_slice(name)
                out[t.get_dtype()] = out.get(t.get_dtype(), 0) + math.prod(t.get_shape())
    except (OSError, SafetensorError):
        return None
    return out


def pretrained_footprint(name_or_path: str, device: str = "cpu", settings=None) -> Footprint | None:
    """The weights of a saved model as loaded: each floating tensor at the dtype it is loaded in
    (``settings.torch_dtype(device)``; float32 on the CPU without settings), read from the
    ``.safetensors`` headers; other weight files count at their size. None for a Hub name, and
    for ``settings.device_map = "auto"``: accelerate spreads the model over every GPU, the CPU
    and disk, so no one device's memory bounds it."""
    path = Path(name_or_path).expanduser()
    if getattr(settings, "device_map", None) is not None or not path.is_dir():
        return None
    files = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth")]
    if not files:
        return None
    loaded = 4
    if settings is not None:
        import torch

        loaded = torch.finfo(settings.torch_dtype(device)).bits // 8
    total = 0
    for p in files:
        elements = _safetensors_elements(p) if p.suffix == ".safetensors" else None
        if elements is None:
            total += p.stat().st_size
        else:
            total += sum(n * (loaded if dt in _FLOATS else _STORED.get(dt, 8)) for dt, n in elements.items())
    return Footprint({"weights": total}, device)


def machine_memory(device: str) -> tuple[int, str] | None:
    """(bytes, how they were found) a run on ``device`` may use: ``ICLAB_MEMORY_LIMIT``, the
    GPU's memory on CUDA, else the memory available on this machine; None when the check is off."""
    env = os.environ.get("ICLAB_MEMORY_LIMIT", "").strip()
    if env.lower() in ("off", "none", "0"):
        return None
    if env:
        return parse_bytes(env), "set by ICLAB_MEMORY_LIMIT"
    if device == "cuda":
        import torch

        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        return total, f"the memory of GPU {torch.cuda.get_device_name()}"
    return _ram_available()


def _ram_available() -> tuple[int, str]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.available, f"available on this machine ({format_bytes(vm.total)} in all)"
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available on this machine"
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "the memory of this machine"


def run_device(device: str) -> str:
    """``train.device`` ("auto", "cpu", "cuda") → where the run will put its model."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but no GPU is available; allowed here: auto, cpu")
    return device


def check_fits(fp: Footprint | None, what: str) -> None:
    """Raise ConfigError, in one line, when ``fp`` needs more than the memory of its device."""
    if fp is None:
        return
    have = machine_memory(fp.device)
    if have is None:
        return
    limit, source = have
    if fp.total > limit:
        knobs = f"; lower {', '.join(fp.knobs)}" if fp.knobs else ""
        raise ConfigError(f"{what} needs {fp.describe()}, more than the {format_bytes(limit)} {source}{knobs} "
                          f"(ICLAB_MEMORY_LIMIT=off skips this check)")
