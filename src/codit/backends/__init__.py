"""Text backends: how codit asks any LLM for text (the judge, the prompted pipelines).

``base`` defines the ``TextBackend`` protocol and its dataclasses, ``openai`` talks to any
OpenAI-compatible server, ``local`` runs a model through codit's own engine, ``cache`` keeps every
finished call in SQLite, and ``spec`` turns a spec string such as
``openai:qwen3-8b@http://localhost:8000/v1`` into a backend.
"""
