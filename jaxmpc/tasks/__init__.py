"""Tasks: the tutorial task of the seed notebook, the data sets the experiments use, encrypted
classification beside its plaintext twin (:mod:`~jaxmpc.tasks.classify`, what ``experiments/train.py``
and ``experiments/sweep.py`` run), and the complexity table of docs/complexity.md
(:mod:`~jaxmpc.tasks.complexity`)."""
from . import classify, complexity, data, tutorial
