"""Model-free maths that probes use: energies, decodability, alignment scores.

Everything here takes NumPy arrays and returns numbers or arrays, so each metric can be
tested against an independent computation on a case with a known answer.
"""
