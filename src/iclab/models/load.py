"""Load any HF causal LM by name or path, with one clear error when it does not load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from iclab.errors import ModelLoadError
from iclab.models import lstm  # noqa: F401  (registers the iclab-lstm config with the Auto classes)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LoadSettings(BaseModel):
    """How a pretrained model (``--model``, or a study's ``models``) is loaded: the ``model.device_map``
    and ``model.dtype`` keys of every study whose ``model`` section describes one (each passes
    its ``model`` section to :func:`load_model`). A model trained here ignores them.

    Parameters
    ----------
    device_map : {"auto"} or None, default None
        None puts the whole model on one device (the GPU when there is one, else the CPU).
        "auto" lets accelerate spread its layers over every GPU, then the CPU (then disk), for
        a model that does not fit one device; on a machine without a GPU everything goes on
        the CPU.
    dtype : {"auto", "float32", "bfloat16", "float16"}, default "auto"
        The weights' dtype. "auto" is bfloat16 on a GPU and float32 on the CPU (bfloat16
        works on the CPU but its matrix products are many times slower there).
    max_memory : dict or None, default None
        With ``device_map``: the most each device may hold, accelerate's ``max_memory``
        (keys "cpu" or a GPU's index, values bytes or strings such as "20GiB"), e.g. to leave
        room on a GPU for the activations of long prompts. None: what each device has free.
        Layers that fit on no device stay in the checkpoint's files on the disk and are read
        for each forward (slow, but a model larger than memory runs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_map: Literal["auto"] | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_memory: dict[str, int | str] | None = None

    @field_validator("max_memory")
    @classmethod
    def _devices(cls, v: dict[str, int | str] | None) -> dict[str, int | str] | None:
        for key, amount in (v or {}).items():
            if not (key == "cpu" or key.isdigit()):
                raise ValueError(f"device {key!r} is not 'cpu' or a GPU index such as '0'")
            if isinstance(amount, int) and amount < 0:
                raise ValueError(f"{key}: {amount} bytes is negative")
            if isinstance(amount, str) and not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B)?", amount.strip()):
                raise ValueError(f"{key}: {amount!r} is not an amount such as 20GiB, 500MB or a number of bytes")
        return v

    @model_validator(mode="after")
    def _with_a_map(self) -> LoadSettings:
        if self.max_memory is not None and self.device_map is None:
            raise ValueError("max_memory is accelerate's, for a model spread by device_map; set "
                             "model.device_map=auto with it")
        return self

    def placement(self) -> dict:
        """The keyword arguments of ``from_pretrained`` that place the model (empty: one device)."""
        if self.device_map is None:
            return {}
        out: dict = {"device_map": self.device_map}
        if self.max_memory is not None:
            out["max_memory"] = {int(k) if k.isdigit() else k: v for k, v in self.max_memory.items()}
        return out

    def torch_dtype(self, device: str) -> torch.dtype:
        """The dtype a model loaded onto ``device`` ("cpu", "cuda") gets."""
        if self.dtype == "auto":
            return torch.bfloat16 if device.startswith("cuda") else torch.float32
        return DTYPES[self.dtype]


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists() or name.count("/") > 1


def check_model_path(name_or_path: str) -> None:
    """Raise :class:`ModelLoadError` now if ``name_or_path`` is a local path that does not exist,
    has no ``config.json`` or one that does not describe a model (cheap: no weights are read;
    a Hub name is only checked by loading it)."""
    path = Path(name_or_path).expanduser()
    if _looks_like_path(name_or_path) and not path.exists():
        raise ModelLoadError(f"model path {name_or_path!r} does not exist")
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(f"model path {name_or_path!r} has no config.json; "
                             f"expected a directory written by save_pretrained")
    if path.exists():
        from transformers import AutoConfig

        try:
            AutoConfig.from_pretrained(str(path))
        except Exception as e:  # a damaged or foreign config.json: JSON, key and value errors alike
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(f"model {name_or_path!r} could not be loaded: its config.json does not load "
                                 f"({reason})") from None


def context_limits(model) -> tuple[int | None, int | None]:
    """``(trained, maximum)``: the sequence length a model trained by iclab saw in training
    (``config.iclab_trained_context``, written by :func:`save_trained`), and the most positions
    its architecture takes (``max_position_embeddings`` or ``n_positions``); None where unknown."""
    cfg = getattr(model, "config", None)
    trained = getattr(cfg, "iclab_trained_context", None)
    maximum = next((v for k in ("max_position_embeddings", "n_positions", "n_ctx")
                    if isinstance(v := getattr(cfg, k, None), int)), None)
    return trained, maximum


def save_trained(model, path, trained_context: int) -> None:
    """``save_pretrained`` with the training sequence length recorded in the config, so that
    ``--model`` on this directory can check its prompts against it."""
    model.config.iclab_trained_context = int(trained_context)
    model.save_pretrained(path)


def load_model(name_or_path: str, *, device: str | None = None, dtype: torch.dtype | None = None,
               trust_remote_code: bool = False, tokenizer: Literal["auto", "required", "none"] = "auto",
               check: bool | None = None, settings: LoadSettings | None = None) -> tuple[PreTrainedModel, object | None]:
    """Load a causal LM (and its tokenizer, if it has one) in eval mode.

    Parameters
    ----------
    name_or_path : str
        A local directory written by ``save_pretrained`` or a Hugging Face Hub name.
    device : str, optional
        Defaults to "cuda" when a GPU is present, else "cpu". Not with ``settings.device_map``.
    dtype : torch.dtype, optional
        Defaults to ``settings.dtype`` ("auto": bfloat16 on a GPU and float32 on the CPU, where
        bf16 is very slow).
    trust_remote_code : bool, default False
        Off unless asked: remote code runs on this machine.
    tokenizer : {"auto", "required", "none"}, default "auto"
        "auto" loads the tokenizer when the model has one (None otherwise); "required"
        refuses a model without one (studies that write prompts as text); "none" skips it
        (models over a world's own tokens).
    check : bool or None, default None
        Run the identity checks (:mod:`iclab.models.identities`: the residual stream adds
        up, the heads' results sum to the attention output, the final norm and unembedding
        give the logits) on one forward pass of 6 tokens. None checks the models whose
        family is not in iclab's table (its module paths were guessed); True checks any
        model; False none. The tokenizer is attached as ``model.iclab_tokenizer``, so that
        ``capture`` and ``patch`` take text.
    settings : LoadSettings, optional
        A study's ``model`` section: ``device_map`` ("auto": spread over the GPUs and the CPU
        by accelerate) and ``dtype``. Defaults to ``LoadSettings()``: one device, dtype "auto".

    Raises
    ------
    ModelLoadError
        The path does not exist, the name is not on the Hub (or there is no network),
        or the weights are corrupt, or an identity check fails (one line naming the
        identity and the layer).
    """
    settings = settings or LoadSettings()
    if device is not None and settings.device_map is not None:
        raise ValueError(f"device = {device!r} and device_map = {settings.device_map!r}: give one of them")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or settings.torch_dtype(device)
    path = Path(name_or_path).expanduser()
    check_model_path(name_or_path)
    placement = settings.placement()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path) if path.exists() else name_or_path,
                                                     dtype=dtype, trust_remote_code=trust_remote_code, **placement)
    except Exception as e:  # HF raises OSError, ValueError, safetensors errors...; all mean "does not load"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"model {name_or_path!r} could not be loaded: {reason}") from e
    if not placement:  # with a device_map accelerate has placed every layer already
        model.to(device)
    model.eval()
    if tokenizer not in ("auto", "required", "none"):
        raise ValueError(f"tokenizer = {tokenizer!r}; allowed: auto, required, none")
    tok = None
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    has_files = not path.exists() or any((path / f).exists() for f in tokenizer_files)
    if tokenizer != "none" and has_files:  # a model trained here has none; AutoTokenizer would make an empty one
        try:
            tok = AutoTokenizer.from_pretrained(str(path) if path.exists() else name_or_path,
                                                trust_remote_code=trust_remote_code)
        except Exception:  # no usable tokenizer; "required" says so below
            tok = None
    if tokenizer == "required" and tok is None:
        raise ModelLoadError(f"model {name_or_path!r} has no tokenizer, and this study writes its prompts as text; "
                             f"save one beside the model with save_pretrained")
    model.iclab_tokenizer = tok  # capture and patch tokenise text with it
    if check is None:  # a model whose roles cannot be found at all still loads (for forward passes);
        from iclab.models.hooks import anatomy  # capture then says which role is missing

        try:
            check = anatomy(model).family.guessed
        except ModelLoadError:
            check = False
    if check:
        from iclab.models.identities import check_identities

        try:
            check_identities(model)
        except ModelLoadError as e:
            raise ModelLoadError(f"model {name_or_path!r}: {e}") from None
    return model, tok
