"""Benchmarks of IC-Light against plain A1111 sampling: a tool, not part of the extension."""
