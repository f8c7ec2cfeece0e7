"""CoIN's training pairs from any instruction dataset: each instruction and a perturbed twin.

``perturb`` holds the code-made levels (character, word, sentence), ``semantic`` the rewordings
by a text backend, ``similarity`` the sentence-embedding check that a rewording kept its
meaning, and ``pipeline`` the resumable run behind ``codit paraphrase``.
"""
