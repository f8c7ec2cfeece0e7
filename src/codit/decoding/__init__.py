"""Decoding: the contrastive score rules (pure), the sampling warpers (pure) and the engine."""
