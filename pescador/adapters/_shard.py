"""Moved to `pescador.split`; kept so that old imports keep working."""

from ..split import check_epoch, mux_size, shard, split_count

__all__ = ["shard", "check_epoch", "mux_size", "split_count"]
