"""Token data: the upstream .bin shard format, a world-size-invariant loader, FineWeb download, text -> shards."""
