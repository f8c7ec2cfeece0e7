"""``codit serve``: CoDIT behind an OpenAI-compatible HTTP API (the ``serve`` extra)."""
