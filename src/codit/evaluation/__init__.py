"""Evaluation: verifiable instruction checks (IFEval) and pairwise LLM judging.

``checks`` holds the pure check functions, ``ifeval`` scores a responses file against the IFEval
prompts (its parts: ``ifeval_config``, ``ifeval_data``, ``ifeval_generate``, ``ifeval_scoring``,
``ifeval_report``), ``judge`` compares two responses files with an LLM judge. Nothing here is imported by
``import codit``.
"""
