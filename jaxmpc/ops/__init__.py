"""Operations written above the kernels: comparison (binary adders, MSB, ReLU, max) and approximations (exp, reciprocal, ...)."""
from . import approx, compare, reduce
