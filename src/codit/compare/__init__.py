"""Two datasets side by side: lengths, finish reasons, diversity, instruction following."""
