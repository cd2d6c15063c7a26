"""Stand-in for torchvision, whose registry build for this torch needs CUDA.

ldm imports `torchvision.utils.make_grid` at module level (for logging images while training); the
tests never call it.
"""
