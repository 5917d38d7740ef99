"""Tasks: the tutorial task of the seed notebook, the data sets the experiments use, and the
complexity table of docs/complexity.md (:mod:`~jaxmpc.tasks.complexity`)."""
from . import complexity, data, tutorial
