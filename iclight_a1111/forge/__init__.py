"""IC-Light on Forge's own machinery (its `backend` package): the offsets as the patches Forge merges and
restores itself, the concat latents as its UNet patcher's concat condition, the encode through its VAE.
Imports Forge's `backend` and the layers below (images, unet, generation), never `modules.*`."""
