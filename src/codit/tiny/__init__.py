"""codit's built-in tiny model pair and the toy world it is made from.

A miniature of the real CoDIT setting that ships inside the package: a base model pre-trained on
plain text about an invented world, and an instruct model post-trained from it on instruction
conversations, sharing one BPE tokenizer and a Llama architecture. ``codit tiny build`` makes
both from a seed:

    world.py          the entities and their facts (``make_world``)
    corpus.py         the base model's pre-training documents
    questions.py      the questions users ask about the world
    instructions.py   the verifiable instructions (IFEval ids and arguments)
    responses.py      answers that follow them
    conversations.py  post-training conversations and held-out evaluation prompts
    tokenizer.py      the BPE tokenizer and its chat template
    train.py          pre-training and supervised fine-tuning loops
    build.py          everything end to end, writing ``models/tiny-base`` and ``models/tiny-instruct``
    evaluate.py       instruction-following of the pair on the held-out prompts

Nothing here is imported by ``import codit``; torch loads only in ``train``, ``build`` and
``evaluate``.
"""
