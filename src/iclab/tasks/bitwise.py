"""Bitwise arithmetic on two 5-digit binary numbers, one task per Boolean operator.

For operands a, b in {0, 1}^5 the answer is the digit-wise ``a ∘ b`` for ∘ in AND, NAND,
OR, NOR, XOR, XNOR (NAND = NOT AND, NOR = NOT OR, XNOR = NOT XOR), written as 5 digits
with leading zeros kept. Han et al., "Emergence and Effectiveness of Task Vectors in
In-Context Learning: An Encoder Decoder Perspective", ICML 2025 (spec ``task_vectors.md``,
"Natural tasks on pretrained LMs").

Format: the input is the two operands separated by one space and the output the result,
most significant digit first, e.g. XOR: ``"01101 10110"`` → ``"11011"``. The Null task
(``op="null"``) draws its inputs the same way and its output as 5 uniform random digits,
independent of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iclab.errors import ConfigError
from iclab.tasks.base import NULL, Example

#: digits of each operand and of the answer
WIDTH = 5

#: digit-wise maps of bool arrays, in the order of the paper
OPS = {
    "and": np.logical_and,
    "nand": lambda a, b: ~np.logical_and(a, b),
    "or": np.logical_or,
    "nor": lambda a, b: ~np.logical_or(a, b),
    "xor": np.logical_xor,
    "xnor": lambda a, b: ~np.logical_xor(a, b),
}


@dataclass(frozen=True)
class BitwiseTask:
    """One bitwise operator on two 5-digit binary numbers, or the family's Null task.

    Parameters
    ----------
    op : {"and", "nand", "or", "nor", "xor", "xnor", "null"}
        The operator; ``"null"`` outputs random digits.
    """

    op: str
    family = "bitwise"

    def __post_init__(self):
        if self.op not in (*OPS, NULL):
            raise ConfigError(f"bitwise op {self.op!r} is not allowed; allowed: {', '.join((*OPS, NULL))}")

    @property
    def name(self) -> str:
        return f"{self.family}-{self.op}"

    @property
    def is_null(self) -> bool:
        return self.op == NULL

    @property
    def instruction(self) -> str:
        if self.is_null:
            return f"Output a random {WIDTH}-digit binary number."
        return f"Compute the bitwise {self.op.upper()} of the two binary numbers."

    def examples(self, rng: np.random.Generator, n: int) -> list[Example]:
        """Draw ``n`` examples with both operands uniform over {0, 1}^5."""
        bits = rng.integers(0, 2, size=(n, 2, WIDTH)).astype(bool)  # (example, operand, digit)
        if self.is_null:
            out = rng.integers(0, 2, size=(n, WIDTH)).astype(bool)  # (example, digit)
        else:
            out = OPS[self.op](bits[:, 0], bits[:, 1])  # (example, digit)
        a, b, y = _digits(bits[:, 0]), _digits(bits[:, 1]), _digits(out)
        return [Example(f"{a[i]} {b[i]}", y[i]) for i in range(n)]

    def null(self) -> BitwiseTask:
        return BitwiseTask(NULL)


def _digits(bits: np.ndarray) -> list[str]:
    """Rows of a bool array of shape (n, WIDTH) as strings of '0' and '1'."""
    return ["".join(row) for row in np.where(bits, "1", "0")]
