"""Property-based: whatever a client sends, the one image decoder and the argument schema give a value or an
`IcLightError` naming the field, never another exception, and never use more than a bounded amount of memory.

Each example runs in a forked child whose address space is capped (`RLIMIT_AS`) at what it had plus
`MEMORY_BOUND`, with Pillow's own size guard off (as after an X/Y/Z plot): an allocation beyond the cap
fails there, and the example fails with it."""
import base64
import io
import math
import os
import pickle
import resource
import struct
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from iclight_a1111.errors import IcLightError
from iclight_a1111.generation.params import PARAMS, PARAMS_BY_KEY
from iclight_a1111.generation.values import values_from_args
from iclight_a1111.images.image_decoding import MAX_IMAGE_PIXELS, decode_image

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks and caps the address space")
MEMORY_BOUND = 1536 * 2**20  # the most an 8192x8192 RGBA image costs to read (file, pixels, RGBA, array), and more
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("ICLIGHT_PROPERTY_EXAMPLES", 120)), deadline=None,
                             database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def address_space() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


def bounded(function, *args):
    """`function(*args)` in a forked child with its address space capped: ("value", summary),
    ("refused", status, message), or ("crash", what)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            Image.MAX_IMAGE_PIXELS = None  # as after an X/Y/Z plot drew a grid: Pillow's own guard is off
            resource.setrlimit(resource.RLIMIT_AS, (address_space() + MEMORY_BOUND, resource.RLIM_INFINITY))
            try:
                outcome = ("value", summary(function(*args)))
            except IcLightError as e:
                outcome = ("refused", e.status_code, str(e))
            except BaseException as e:  # noqa: BLE001 (anything else fails the property)
                outcome = ("crash", f"{type(e).__name__}: {str(e)[:300]}")
            os.write(write, pickle.dumps(outcome))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    return pickle.loads(data) if data else ("crash", f"the child died (wait status {status})")


def summary(value):
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype))
    if isinstance(value, dict):
        return ("values", sorted(value), out_of_schema(value))
    return ("other", type(value).__name__)


def out_of_schema(values):
    """The values a checked set of arguments must never hold: each as its kind and within its range."""
    wrong = []
    for param in PARAMS:
        value = values[param.key]
        if param.kind == "number":
            ok = isinstance(value, (int, float)) and math.isfinite(value) and param.minimum <= value <= param.maximum
        elif param.kind == "choice":
            ok = value in param.choices
        elif param.kind == "bool":
            ok = isinstance(value, bool)
        elif param.kind == "color":
            ok = isinstance(value, str) and len(value) == 7 and value[0] == "#"
        elif param.kind == "lights":
            ok = isinstance(value, tuple) and len(value) <= 16
        elif param.kind == "image":
            ok = value is None or (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3)
        else:
            ok = isinstance(value, str)
        if not ok:
            wrong.append(f"{param.key}={str(value)[:40]}")
    return wrong


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width, height, depth_and_color=(8, 2)):
    header = struct.pack(">IIBBBBB", width, height, *depth_and_color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_header(width, height):
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 32 + b"\xff\xd9"


def webp_canvas(width, height):
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def ico_around(payload, declared=0):
    directory = struct.pack("<BBBBHHII", declared, declared, 0, 0, 1, 32, len(payload), 22)
    return struct.pack("<HHH", 0, 1, 1) + directory + payload


sides = st.integers(1, 2**16 - 1) | st.integers(1, 2**31 - 1)


@st.composite
def real_images(draw):
    """A small real image in an accepted format and any mode that format can hold."""
    form = draw(st.sampled_from(["PNG", "JPEG", "WEBP"]))
    modes = {"PNG": ["RGB", "RGBA", "L", "LA", "P", "I", "1"], "JPEG": ["RGB", "L", "CMYK"], "WEBP": ["RGB", "RGBA"]}[form]
    mode = draw(st.sampled_from(modes))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**16))
    noise = np.random.default_rng(seed).integers(0, 255, (height, width, 4), np.uint8)
    image = Image.fromarray(noise, "RGBA").convert(mode)
    options = {}
    if form in ("JPEG", "WEBP") and draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, format=form, **options)
    return buffer.getvalue()


@st.composite
def damaged(draw, files):
    """A file cut short, or with bytes changed."""
    data = bytearray(draw(files))
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


headers = st.one_of(
    st.builds(png_header, sides, sides, st.sampled_from([(8, 2), (8, 6), (16, 6), (8, 0), (16, 0), (1, 0), (8, 3)])),
    st.builds(jpeg_header, st.integers(1, 2**16 - 1), st.integers(1, 2**16 - 1)),
    st.builds(webp_canvas, st.integers(1, 2**24), st.integers(1, 2**24)),
    st.builds(lambda magic, rest: magic + rest, st.sampled_from([b"II*\x00", b"MM\x00*", b"GIF89a", b"BM", b"8BPS",
                                                                 b"\x00\x00\x01\x00", b"%PDF", b"P6\n"]), st.binary(max_size=64)),
    st.binary(max_size=256),
)
# Containers whose header says one size and whose image is another (an ICO's directory and its PNG).
containers = st.builds(ico_around, st.builds(png_header, sides, sides) | real_images(), st.integers(0, 255))
files = st.one_of(real_images(), headers, containers, damaged(real_images()), damaged(headers))


@st.composite
def base64_texts(draw, files):
    """A file as a client may send it: base64, maybe wrapped in lines, maybe a data URL, maybe garbled."""
    text = base64.b64encode(draw(files)).decode()
    if draw(st.booleans()):
        width = draw(st.integers(4, 100))
        text = draw(st.sampled_from(["\n", "\r\n", " "])).join(text[i:i + width] for i in range(0, len(text), width))
    if draw(st.booleans()):
        text = "data:image/png;base64," + text
    if draw(st.integers(0, 9)) == 0:
        text = text[:draw(st.integers(0, len(text)))] + draw(st.text(max_size=4))
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-2**4000, 2**4000) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=12,
)
image_values = st.one_of(base64_texts(files), json_values)


@PROPERTY_SETTINGS
@given(value=image_values)
def test_the_decoder_gives_an_image_or_a_refusal_naming_the_field(value):
    outcome = bounded(decode_image, value, "foreground")
    assert outcome[0] != "crash", outcome[1]
    if outcome[0] == "refused":
        assert outcome[1] in (400, 413) and "'foreground'" in outcome[2], outcome
    elif outcome[1] != ("other", "NoneType"):
        kind, shape, dtype = outcome[1]
        assert kind == "array" and dtype == "uint8" and len(shape) == 3 and shape[2] in (3, 4), outcome
        assert shape[0] * shape[1] <= MAX_IMAGE_PIXELS


ODD_NUMBERS = [math.nan, math.inf, -math.inf, "nan", "inf", "-1e999", "1e999", 10**400, "5.5", True, "0x10", " 3 "]
KEYS = [p.key for p in PARAMS]
LIGHT = st.fixed_dictionaries({"x": st.floats(0, 1), "y": st.floats(0, 1)},
                              optional={"radius": st.floats(0.01, 2), "intensity": st.floats(0, 10),
                                        "color": st.from_regex(r"#[0-9a-f]{6}", fullmatch=True)})


def valid_value(key):
    """A value the schema accepts for `key`, as the panel or a careful client sends it."""
    param = PARAMS_BY_KEY[key]
    if param.kind == "number":
        low, high = param.minimum, param.maximum
        return st.integers(int(low), int(high)) if isinstance(param.default, int) else st.floats(low, high)
    return {"bool": st.booleans(), "choice": st.sampled_from(param.choices),
            "text": st.sampled_from(["", "iclight_sd15_fc.safetensors", "iclight_sd15_fbc [fbc]"]),
            "color": st.from_regex(r"#?[0-9a-fA-F]{6}", fullmatch=True),
            "lights": st.lists(LIGHT, max_size=3) | st.just(""),
            "image": st.none() | base64_texts(real_images())}[param.kind]


def hostile_value(key):
    """Anything a client may send in that place, above all what is near to what the place takes."""
    kind = PARAMS_BY_KEY[key].kind if key in PARAMS_BY_KEY else None
    near = {"number": st.sampled_from(ODD_NUMBERS) | st.floats(), "image": image_values,
            "lights": st.lists(json_values | LIGHT, max_size=20) | st.text(max_size=3000)}.get(kind, st.nothing())
    return st.one_of(near, json_values, st.sampled_from(ODD_NUMBERS), st.text(min_size=1000, max_size=5000))


@st.composite
def named_args(draw):
    """A dict of named arguments, valid but for at most one hostile entry (else the first junk is all that is met)."""
    named = {key: draw(valid_value(key)) for key in draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True))}
    if draw(st.integers(0, 4)) > 0:
        key = draw(st.sampled_from(KEYS)) if draw(st.integers(0, 4)) else draw(st.text(max_size=12))
        named[key] = draw(hostile_value(key))
    return named


@st.composite
def positional_args(draw):
    """Positional arguments: valid ones up to a place, then one hostile value, or any list at all."""
    if draw(st.booleans()):
        return draw(st.lists(json_values, max_size=len(PARAMS) + 2))
    args = [draw(valid_value(key)) for key in KEYS[:draw(st.integers(0, len(KEYS)))]]
    if len(args) < len(KEYS) and draw(st.booleans()):
        args.append(draw(hostile_value(KEYS[len(args)])))
    return args


one_hostile_value = st.sampled_from(KEYS).flatmap(lambda key: hostile_value(key).map(lambda value: [{key: value}]))


def names_a_field(message):
    return ("Unknown IC-Light argument" in message or "IC-Light takes" in message or "IC-Light light " in message
            or any(f"'{p.key}'" in message for p in PARAMS))


@PROPERTY_SETTINGS
@given(args=st.one_of(one_hostile_value, named_args().map(lambda named: [named]), positional_args()))
def test_the_schema_gives_values_or_a_refusal_naming_the_field(args):
    outcome = bounded(values_from_args, args)
    assert outcome[0] != "crash", outcome[1]
    if outcome[0] == "refused":
        assert outcome[1] in (400, 413) and names_a_field(outcome[2]), outcome
    else:
        assert outcome[1] == ("values", sorted(PARAMS_BY_KEY), []), outcome
