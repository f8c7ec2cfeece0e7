"""Files at the edge: reading prompt datasets, appending JSONL records, run manifests."""
