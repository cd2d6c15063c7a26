"""The only layer that imports A1111's `modules.*`: the Host, the SdUnet, settings and cache policy,
progress, model folders and downloads, the panel, the endpoints, the X/Y/Z axes."""
