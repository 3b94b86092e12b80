"""iclab: a laboratory for in-context learning.

Synthetic worlds, training of transformers on them, and one set of probes that works the
same on a model trained here and on any pretrained Hugging Face causal LM.

The top-level verbs (``run``, ``resume``, ``report``, ``results``, ``list_runs``,
``probe_checkpoints``) are imported lazily, so
``import iclab.worlds`` stays free of torch.
"""

__version__ = "0.1.0"
__all__ = ["run", "resume", "report", "results", "list_runs", "probe_checkpoints", "__version__"]


def __getattr__(name: str):
    if name in ("run", "resume", "report", "results", "list_runs", "probe_checkpoints"):
        from iclab import api

        return getattr(api, name)
    raise AttributeError(f"module 'iclab' has no attribute {name!r}")
