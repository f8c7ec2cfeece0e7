"""Small, reproducible experiments that replay a paper's claim on the built-in tiny pair.

    stats.py        means and Student-t confidence intervals over seeds (pure functions)
    student.py      the cross-architecture student: a GPT-NeoX base with its own tokenizer
    codit_mini.py   CoDIT's experiment in miniature: direct vs CoDIT data -> student -> IFEval checks
    report.py       the Markdown table and the PNG drawn from an experiment's results.json

They are end-to-end runs of codit's own commands (generate, train sft, the verifiable checks),
not new machinery; torch loads only when an experiment runs.
"""
