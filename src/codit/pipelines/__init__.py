"""Prompted pipelines: datasets made by asking LLMs through text backends.

    codeclm.py        CodecLM (Wang et al. 2024): instructions tailored to a target model
    codeclm_config.py its settings (CodecLMConfig)
    codeclm_steps.py  its writing steps: encode, augment, decode, Self-Rubrics
    codeclm_filter.py its Contrastive Filtering
    codeclm_parse.py  the parsers (and JSON schemas) of CodecLM's prompts
    ecd.py            ECD (Katz-Samuels et al. 2024): evolution chains -> preference pairs
    ecd_config.py     its settings (EcdConfig)
    ecd_steps.py      its steps: choose an operation, evolve, respond
    ecd_checks.py     its checks: chosen follows the instruction, rejected misses the new requirement
    ecd_parse.py      the parsers (and JSON schemas) of ECD's prompts, Evol-Instruct's eliminations
    constraints.py    verifiable constraints (IFEval types) an evolution step can add
    llm.py            role backends with cost meters; asking with bounded re-asks
    replies.py        reading JSON, labels and lists out of free LLM text
    templates.py      the prompt template files under ``codit/prompts``
    outputs.py        a run's files: seeds, resumption, side files, manifest and report
    prompted.py       the run skeleton CodecLM and ECD share: seeds, roles, work, report

Every LLM reply is free text that may not parse; nothing here crashes on one.
"""
