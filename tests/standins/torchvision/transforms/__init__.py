"""Stand-in for `torchvision.transforms` (see the package docstring)."""
