"""Rollout data sets: collection through the native vector env, storage, and a streaming loader.

The public names live here; the code is split by job: collection (:mod:`vim_world.collection`),
format checks (:mod:`vim_world.data_format`) and loading (:mod:`vim_world.loading`).

Format (documented in ``docs/data.md``): a directory with ``meta.json`` and one sub-directory per
shard holding plain ``.npy`` arrays (readable by numpy alone, memory-mapped when loading):

=============  ===================  =======  ==============================================
file           shape                dtype    content
=============  ===================  =======  ==============================================
pixels.npy     (E, T, H, W, 3)      uint8    frames
states.npy     (E, T, K, S)         float32  object state features (``STATE_FEATURES``)
mechanism.npy  (E, T, K)            int64    ground-truth mechanism id of each object
actions.npy    (E, T, A)            float32  action taken after frame t (one-hot if discrete)
rewards.npy    (E, T)               float32  reward received after action t
valid.npy      (E, T)               bool     False after the episode terminated
masks.npy      (E, T, K, H, W)      bool     visible object masks (if collected with masks)
=============  ===================  =======  ==============================================

``meta.json`` holds the env id and options, seed, package version, shapes, and the SHA-256 of
every file; :func:`open_dataset` verifies them, checks every array's shape and dtype, and names
any truncated, corrupted or malformed file. ``pixels.npy`` is absent when collected with
``env_kwargs={"obs_mode": "state"}``.
A data set is written to a temporary directory and renamed into place; an existing one is never
overwritten unless asked, and ``overwrite`` replaces only a data set (a directory with a
``meta.json`` written by this package), never the current directory or one of its parents.
"""

from vim_world.collection import MAX_COLLECT_MEMORY, action_dim, check_collection_size, collect, collect_once, merge
from vim_world.data_format import (
    ARRAYS,
    FORMAT_VERSION,
    DatasetError,
    dataset_identity,
    has_frames,
    is_dataset,
    require_frames,
)  # fmt: skip
from vim_world.loading import Dataset, SequenceLoader, open_dataset, rank_rows, split_shards, uses_actions
from vim_world.minari_io import from_minari, to_minari

__all__ = [
    "ARRAYS", "FORMAT_VERSION", "MAX_COLLECT_MEMORY", "Dataset", "DatasetError", "SequenceLoader", "action_dim",
    "check_collection_size", "collect", "collect_once", "dataset_identity", "from_minari", "has_frames", "is_dataset", "merge", "open_dataset", "rank_rows",
    "require_frames", "split_shards", "to_minari", "uses_actions",
]  # fmt: skip
