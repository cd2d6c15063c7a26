"""Stand-in for `torchvision.transforms.functional`: `k_diffusion.utils` imports it as TF; only its
image helpers use it, and the tests never call them."""
