"""Exporting codit outputs as carded, ``datasets``-loadable folders, and publishing them."""
