"""Small, reproducible experiments that replay a paper's claim on the built-in tiny pair.

    stats.py        means and Student-t confidence intervals over seeds (pure functions)
    student.py      the cross-architecture student: a GPT-NeoX base with its own tokenizer
    codit_mini.py   CoDIT's experiment in miniature: direct vs CoDIT data -> student -> IFEval checks
    codit_stages.py its stages: prompts, teacher data, fine-tuning, evaluation, token shift
    codit_results.py its results.json: per-seed scores, intervals, data quality
    grid.py         its alpha x beta grid: cells, their names, distinct-n (pure functions)
    token_shift.py  what the contrast changes: probability moved onto and off each token
    report.py       the Markdown tables, bar chart and grid heat map from the CoDIT results.json
    coin_tasks.py   the toy benchmark of the CoIN experiment: five tasks, wordings, perturbations
    coin_mini.py    CoIN's experiment in miniature: tuning with and without the CoIN term -> perturbed instructions
    coin_stages.py  its stages: test set, training pairs, training, evaluation
    coin_results.py its results.json: accuracy and spread per level, intervals
    coin_report.py  its table and PNG
    rundir.py       what every run directory shares: manifest, resume, timings, threads

They are end-to-end runs of codit's own commands (generate, train sft and coin, the verifiable checks),
not new machinery; torch loads only when an experiment runs.
"""
