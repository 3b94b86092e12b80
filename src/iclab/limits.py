"""Caps on every size a config can set: generous for a lab tool, but finite.

A config is validated before anything is allocated, so a typo of a few zeros
(``train.batch_size=100000000000``) is refused in one line instead of trying to allocate
terabytes. The caps are far above any preset (the paper presets train models of at most
a few hundred million parameters on sequences of a few thousand tokens); the memory
estimate of :mod:`iclab.memory` then checks what a valid config would need against the
machine.

Every int field of a config schema has an upper bound, most of them one of these; floats
are finite (``allow_inf_nan=False``). ``tests/faults/test_config_bounds.py`` walks every
study's config and checks it.
"""

from __future__ import annotations

#: optimizer steps, warm-up, evaluation and checkpoint intervals
MAX_STEPS = 100_000_000
#: sequences per batch (training and probing)
MAX_BATCH = 65_536
#: prompts, walks or examples a probe draws
MAX_PROMPTS = 1_000_000
#: vocabulary sizes (the largest LLM vocabularies have about 256k tokens)
MAX_VOCAB = 4_194_304
#: tokens in a sequence (also ``max_len``)
MAX_SEQ = 1_048_576
#: residual width ``d_model``
MAX_WIDTH = 65_536
#: MLP width
MAX_MLP = 262_144
#: layers of a model
MAX_LAYERS = 256
#: attention heads
MAX_HEADS = 1_024
#: seeds (numpy and torch both take them)
MAX_SEED = 2**32 - 1
#: nodes, graphs, topics and other counts of a world's structure
MAX_ITEMS = 1_000_000
#: entries of a list setting (layers to train, steps to probe at, shot counts)
MAX_LIST = 10_000
#: worker processes that draw training batches (``train.data_workers``)
MAX_DATA_WORKERS = 64
