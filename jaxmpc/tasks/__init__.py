"""Tasks: the tutorial task of the seed notebook and the data sets the experiments use."""
from . import data, tutorial
