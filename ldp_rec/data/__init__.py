"""Data sets and their federated partitions (no Flower import).

- :mod:`ldp_rec.data.digits`: sklearn's 8×8 digits, the embedded default (no download).
- :mod:`ldp_rec.data.synthetic`: Synthetic(α, β) of FedProx.
- :mod:`ldp_rec.data.partition`: IID, Dirichlet and "every example its own user" partitions.
- :mod:`ldp_rec.data.hub`: optional MNIST / CIFAR-10 / FEMNIST from the Hugging Face hub.
"""

from .digits import DIGITS_NUM_CLASSES, DIGITS_SHAPE, load_digits_split
from .hub import HUB_DATASETS, HubArrays, HubUnavailableError, load_hub_arrays, load_hub_dataset, partition_arrays
from .partition import SCHEMES, Partition, partition
from .synthetic import SyntheticData, make_synthetic

__all__ = [
    "DIGITS_NUM_CLASSES",
    "DIGITS_SHAPE",
    "HUB_DATASETS",
    "HubArrays",
    "HubUnavailableError",
    "Partition",
    "SCHEMES",
    "SyntheticData",
    "load_digits_split",
    "load_hub_arrays",
    "load_hub_dataset",
    "make_synthetic",
    "partition",
    "partition_arrays",
]
