"""Generation runs: a prompt file in, a resumable TRL-format dataset out (``run``), or
conversations in, texts out (``texts``)."""
