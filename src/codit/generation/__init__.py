"""Generation runs: a prompt file in, a resumable TRL-format dataset out (``run``), or
conversations in, texts out (``texts``); ``completions`` is the pair, engine and chat rendering
that a local run and a Ray worker share."""
