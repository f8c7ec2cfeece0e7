"""Annotating generated data and building the CoDIT authors' baselines from it.

``repetition`` (the repetition flag) and ``grade`` (the single-answer judge prompt and its score
parser) are pure; ``measures`` holds the judge-free facts of a response; ``annotate`` runs the
judge over a records file (``codit annotate``); ``filter`` makes a training set from annotated
or plain records (``codit filter``); ``select`` keeps the best-graded sample per prompt
(``codit select --best``, the Best-of-N baseline). ``files`` is all their I/O.
"""
