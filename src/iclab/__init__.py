"""iclab: a laboratory for in-context learning.

Synthetic worlds, training of transformers on them, and one set of probes that works the
same on a model trained here and on any pretrained Hugging Face causal LM.
"""

from iclab.api import report, results, resume, run

__version__ = "0.1.0"
__all__ = ["run", "resume", "report", "results", "__version__"]
