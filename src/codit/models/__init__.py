"""Models at the edge: loading by hub id or path, pair compatibility, chat prompts."""
