"""Mirrors modules/api/api.py (v1.10.1) `encode_pil_to_base64` (lines 102-132): how the API sends each image
of `processed.images`. PNG keeps the image's mode (RGBA stays RGBA) and its text info; JPEG and WebP are
sent as RGB. Departure: the infotext is not written into JPEG/WebP EXIF (piexif is not a test dependency)."""
import base64
import io

from PIL import PngImagePlugin

from modules.shared import opts


def encode_pil_to_base64(image):
    with io.BytesIO() as output_bytes:
        if opts.samples_format.lower() == "png":
            metadata = PngImagePlugin.PngInfo()
            texts = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}
            for key, value in texts.items():
                metadata.add_text(key, value)
            image.save(output_bytes, format="PNG", pnginfo=metadata if texts else None)
        elif opts.samples_format.lower() in ("jpg", "jpeg", "webp"):
            if image.mode in ("RGBA", "P"):
                image = image.convert("RGB")
            image.save(output_bytes, format="JPEG" if opts.samples_format.lower() in ("jpg", "jpeg") else "WEBP")
        else:
            raise ValueError("Invalid image format")
        return base64.b64encode(output_bytes.getvalue())
