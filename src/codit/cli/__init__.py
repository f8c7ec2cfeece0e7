"""The ``codit`` command line: argument parsing and printing, nothing else."""
