"""Images a client sends: only PNG, JPEG and WebP are opened, every step that scales one is bounded by the
image it would make, uploads are checked before A1111's queue lock, and an image is read as A1111 reads
its own (EXIF orientation, base64 with line breaks); what A1111 already decoded is not refused for its size."""
import base64
import io
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, subject, txt2img
from iclight_a1111.errors import IcLightError, ImageTooLarge
from iclight_a1111.images import image_decoding
from iclight_a1111.images.image_decoding import decode_image
from test_endpoints import webui_app


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def b64(data):
    return base64.b64encode(data).decode()


def ico_holding(png_side):
    """An ICO whose directory says 256x256 but whose image is a PNG of png_side x png_side (a few KB)."""
    png = encoded(Image.new("RGB", (png_side, png_side)), "PNG", optimize=True)
    directory = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + directory + png


def png_rgb(width, height):
    """A valid PNG of width x height black pixels, made without holding its pixels (a few KB)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


REFUSED_CONTAINERS = {
    "ICO": lambda: ico_holding(3000),
    "TIFF": lambda: encoded(Image.new("RGB", (8, 8)), "TIFF"),
    "GIF": lambda: encoded(Image.new("P", (8, 8)), "GIF"),
    "BMP": lambda: encoded(Image.new("RGB", (8, 8)), "BMP"),
    "PSD": lambda: b"8BPS\x00\x01" + b"\x00" * 64,
}


@pytest.mark.parametrize("kind", sorted(REFUSED_CONTAINERS))
def test_other_containers_are_refused_by_name_before_decoding(kind):
    started = time.perf_counter()
    with pytest.raises(IcLightError) as refused:
        decode_image(b64(REFUSED_CONTAINERS[kind]()), "foreground")
    assert refused.value.status_code == 400
    assert f"IC-Light 'foreground' is in {kind} format; only PNG, JPEG or WebP" in str(refused.value)
    assert time.perf_counter() - started < 1, "the container was decoded before it was refused"


@pytest.mark.parametrize("field,body", [
    ("image", lambda data: {"image": data}),
])
def test_an_ico_holding_a_large_png_is_refused_by_the_endpoint(a1111, monkeypatch, field, body):
    client = webui_app(monkeypatch)
    response = client.post("/iclight/v1/remove-background", json=body(b64(ico_holding(3000))))
    assert response.status_code == 400 and "'image' is in ICO format" in response.json()["detail"], response.text


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_read(format):
    image = subject(32, seed=4)
    data = encoded(Image.fromarray(image), format, **({"lossless": True} if format == "WEBP" else {}))
    decoded = decode_image(b64(data), "foreground")
    assert decoded.shape == (32, 32, 3)
    if format != "JPEG":
        assert np.array_equal(decoded, image), f"{format} pixels changed"


def test_a_file_over_the_byte_limit_is_refused_with_413_unread(monkeypatch):
    monkeypatch.setattr(image_decoding, "MAX_FILE_BYTES", 1000)
    data = b64(encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "PNG"))
    with pytest.raises(ImageTooLarge, match=r"IC-Light 'background' is a file of .*at most 0 MiB") as refused:
        decode_image(data, "background")
    assert refused.value.status_code == 413


def test_pixels_over_the_limit_declared_by_a_small_file_are_refused_with_413():
    data = png_rgb(9000, 8000)
    assert len(data) < 300_000
    with pytest.raises(ImageTooLarge, match=r"9000x8000 pixels; at most 67.1 megapixels") as refused:
        decode_image(b64(data), "light_map")
    assert refused.value.status_code == 413


def test_a_phone_jpeg_is_upright_as_a1111_reads_its_init_images():
    """EXIF orientation 6: the camera held upright, the pixels stored rotated (A1111's `fix_image`)."""
    from modules.api.api import decode_base64_to_image

    stored = Image.fromarray(subject(48, seed=1)[:, :32])  # 32 wide, 48 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    data = b64(encoded(stored, "JPEG", exif=exif.tobytes(), quality=95))
    ours = decode_image(data, "foreground")
    theirs = np.array(decode_base64_to_image(data).convert("RGB"))
    assert ours.shape == (32, 48, 3), f"not turned upright: {ours.shape}"
    assert np.array_equal(ours, theirs), "IC-Light's foreground differs from A1111's own reading"


def test_base64_with_line_breaks_and_data_urls_are_read():
    data = encoded(Image.fromarray(subject(24)), "PNG")
    plain = decode_image(b64(data), "foreground")
    for text in (base64.encodebytes(data).decode(), "data:image/png;base64," + base64.encodebytes(data).decode(),
                 "\r\n".join(b64(data)[i:i + 76] for i in range(0, len(b64(data)), 76))):
        assert np.array_equal(decode_image(text, "foreground"), plain), text[:40]
    with pytest.raises(IcLightError, match="not valid base64"):
        decode_image(b64(data)[:-3] + "!!!", "foreground")


def test_a_cut_short_image_is_refused_by_name():
    data = encoded(Image.fromarray(subject(64)), "PNG")
    with pytest.raises(IcLightError, match="IC-Light 'foreground': the data is not a readable PNG image"):
        decode_image(b64(data[:200]), "foreground")


def test_decoded_pictures_are_not_refused_for_a_size_a1111_accepted(a1111, monkeypatch):
    """What A1111 (the img2img picture) or gradio (the panel's uploads) decoded is taken at any size: the
    pixel limit guards decoding, done by then."""
    from modules import processing

    monkeypatch.setattr(image_decoding, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    assert decode_image(Image.fromarray(subject(64)), "the img2img picture").shape == (64, 64, 3)
    assert decode_image(subject(64, alpha=True), "foreground").shape == (64, 64, 4)
    p = img2img([{"light": "Left", "foreground": subject(64)}], [pil(subject(64))], steps=2, denoising_strength=0.9)
    processing.process_images(p)
    assert p.extra_generation_params.get("IC-Light light") == "Left"


def test_a_thin_img2img_picture_is_refused_naming_the_picture(a1111):
    from modules import processing

    thin = Image.new("RGB", (40000, 10))
    p = img2img([{"light": "Left"}], [thin], steps=2, denoising_strength=0.9, width=512, height=512, resize_mode=1)
    with pytest.raises(IcLightError) as refused:
        processing.process_images(p)
    message = str(refused.value)
    assert message.startswith("The img2img picture (40000x10) would be scaled to 2048000x512"), message
    assert "at most 67.1 are allowed" in message and "'foreground'" not in message


@pytest.mark.parametrize("args,field", [
    ({"remove_background": True}, "IC-Light 'foreground' (20000x10) is too far from square for background removal"),
    ({}, "IC-Light 'foreground' (20000x10) would be scaled to 1280000x640 to cover the 512x640 output"),
])
def test_unbounded_work_on_a_thin_foreground_is_refused_before_it_starts(a1111, args, field):
    from modules import processing

    thin = b64(png_rgb(20000, 10))
    size = {} if args else {"width": 512, "height": 640}
    p = txt2img([{"foreground": thin, **args}], steps=2, **size)
    started = time.perf_counter()
    with pytest.raises(IcLightError, match=field.replace("(", r"\(").replace(")", r"\)")):
        processing.process_images(p)
    assert time.perf_counter() - started < 5, "the refusal came after the work"


def test_the_thin_png_to_the_light_map_endpoint_is_bounded(a1111, monkeypatch):
    """The webui was killed by 24 GB: a 40000x10 custom map covering a 1024x1024 output."""
    client = webui_app(monkeypatch)
    thin = b64(png_rgb(40000, 10))
    started = time.perf_counter()
    covered = client.post("/iclight/v1/light-map", json={"light": "Custom", "light_map": thin, "width": 1024,
                                                          "height": 1024, "resize_mode": 1})
    assert covered.status_code == 400, covered.text
    assert covered.json()["detail"].startswith("IC-Light 'light_map' (40000x10) would be scaled to 4096000x1024"), covered.text
    stretched = client.post("/iclight/v1/light-map", json={"light": "Custom", "light_map": thin, "width": 1024, "height": 1024})
    assert stretched.status_code == 200, "Just resize (the default) makes nothing larger than the output"
    assert time.perf_counter() - started < 10


def test_the_light_map_endpoint_answers_at_most_2048_pixels_a_side(client):
    assert client.post("/iclight/v1/light-map", json={"light": "Left", "width": 2048, "height": 2048}).status_code == 200
    refused = client.post("/iclight/v1/light-map", json={"light": "Left", "width": 2049, "height": 64})
    assert refused.status_code == 400 and "within 8..2048" in refused.json()["detail"], refused.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "12.5", "true", "\"512\"", "10" * 200])
def test_light_map_sizes_that_are_not_whole_numbers_are_400(client, value):
    body = '{"light": "Left", "width": %s}' % value
    response = client.post("/iclight/v1/light-map", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, f"width {value}: {response.status_code} {response.text}"
    assert "'width' must be a whole number of pixels within 8..2048" in response.json()["detail"]


@pytest.fixture
def client(a1111, monkeypatch):
    return webui_app(monkeypatch)


def test_a_refused_upload_is_answered_while_a_generation_holds_the_queue(a1111, monkeypatch):
    from modules import call_queue

    client = webui_app(monkeypatch)
    answers = []
    request = threading.Thread(target=lambda: answers.append(client.post(
        "/iclight/v1/remove-background", json={"image": b64(REFUSED_CONTAINERS["TIFF"]())})), daemon=True)
    with call_queue.queue_lock:  # a generation runs
        request.start()
        request.join(timeout=10)
        answered = not request.is_alive()
    request.join()
    assert answered, "the refused upload waited for the running generation"
    assert answers[0].status_code == 400, answers[0].text
