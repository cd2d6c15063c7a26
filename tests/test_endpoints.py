"""/iclight/v1/... on a FastAPI app wired as A1111 wires it: `app_started_callback(demo, app)` after
the app exists (webui.py v1.10.1, 38 and 119), exercised with FastAPI's TestClient."""
import base64
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from generation_harness import img2img, pil, script_module, subject
from test_background_removal import random_released_file


def decode_png(text):
    return np.array(Image.open(io.BytesIO(base64.b64decode(text))))


def encode_png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def png_declaring(width, height):
    """base64 of a tiny PNG whose header declares `width` x `height` RGB pixels; its pixel data is cut
    short, so only a reader that refuses it from the header gives a size refusal."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return base64.b64encode(data).decode()


def webui_app(monkeypatch, api=True, api_auth=None, nowebui=False, routes=()):
    """A FastAPI app as webui.py (v1.10.1, 108-119) builds it: A1111's `Api` (its error handler and, with
    `--api-auth`, its authentication; one of its routes, and `routes` (path, function) given, stand for
    all) when `--api` is given, then the `app_started` callbacks."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from modules import script_callbacks, shared
    from modules.api.api import Api

    for flag, value in (("api", api), ("api_auth", api_auth), ("nowebui", nowebui)):
        monkeypatch.setattr(shared.cmd_opts, flag, value)
    script_module("iclight_api")  # registers its app_started callback, as A1111's script loader would
    app = FastAPI()
    if api or nowebui:
        api = Api(app)
        api.add_api_route("/sdapi/v1/progress", lambda: {"progress": 0}, methods=["GET"])
        for path, function in routes:
            api.add_api_route(path, function, methods=["POST"])
    script_callbacks.app_started_callback(None, app)
    assert not script_callbacks.reported_errors, script_callbacks.reported_errors
    return TestClient(app)


@pytest.fixture
def client(a1111, monkeypatch):
    return webui_app(monkeypatch)


def test_endpoints_ask_for_the_api_auth_credentials_as_sdapi_does(a1111, monkeypatch):
    client = webui_app(monkeypatch, api_auth="alice:s3cret,bob:hunter2")
    for path in ("/sdapi/v1/progress", "/iclight/v1/models"):
        anonymous = client.get(path)
        assert anonymous.status_code == 401, (path, anonymous.text)
        assert client.get(path, auth=("alice", "wrong")).status_code == 401, path
    assert client.get("/iclight/v1/models", auth=("carol", "s3cret")).status_code == 401, "an unknown user was let in"
    assert client.get("/iclight/v1/models", auth=("alice", "s3cret")).status_code == 200
    assert client.get("/iclight/v1/models", auth=("bob", "hunter2")).status_code == 200, "the second user was refused"
    refused = client.post("/iclight/v1/light-map", json={"light": "Left"})
    assert refused.status_code == 401, "light-map answers without credentials"
    assert client.post("/iclight/v1/remove-background", json={}).status_code == 401, "remove-background answers without credentials"


@pytest.mark.parametrize("flags,served", [({"api": False}, False), ({"api": True}, True), ({"api": False, "nowebui": True}, True)])
def test_endpoints_exist_only_where_the_webui_serves_its_api(a1111, monkeypatch, flags, served):
    """Without `--api` (or `--nowebui`) A1111 adds no `/sdapi/v1` routes; ours are not added either, so a
    webui shared with `--gradio-auth` only does not answer anyone on /iclight/v1."""
    client = webui_app(monkeypatch, **flags)
    assert (client.get("/iclight/v1/models").status_code == 200) == served


def test_the_endpoints_are_described_in_valid_openapi_with_their_bodies_and_answers(client):
    """What a schema-driven fuzzer (tools/fuzz_endpoints.sh) generates requests from."""
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)
    light_map = document["paths"]["/iclight/v1/light-map"]["post"]
    body = light_map["requestBody"]["content"]["application/json"]["schema"]
    assert {"light", "lights", "light_map", "width", "height", "resize_mode"} <= set(body["properties"])
    assert body["properties"]["light"]["enum"][:2] == ["Left", "Right"] and body["additionalProperties"] is False
    for path in ("/iclight/v1/models", "/iclight/v1/light-map", "/iclight/v1/remove-background"):
        operation = next(iter(document["paths"][path].values()))
        assert {"200", "400", "401", "413", "500", "503"} <= set(operation["responses"]), path


def test_models_lists_each_file_with_kind_label_hash_and_size(a1111, client):
    import hashlib

    shutil.copy(a1111.model_dir / "iclight_sd15_fc.safetensors", a1111.model_dir / "iclight_sd15_fcon.safetensors")
    response = client.get("/iclight/v1/models")
    assert response.status_code == 200, response.text
    models = {m["name"]: m for m in response.json()["models"]}
    assert {n: m["kind"] for n, m in models.items()} == {
        "iclight_sd15_fbc.safetensors": "fbc", "iclight_sd15_fc.safetensors": "fc", "iclight_sd15_fcon.safetensors": "fcon"}
    fc = a1111.model_dir / "iclight_sd15_fc.safetensors"
    assert models[fc.name]["hash"] == hashlib.sha256(fc.read_bytes()).hexdigest()[:10]
    assert models[fc.name]["size"] == fc.stat().st_size
    assert {m["label"] for m in models.values()} == {
        "iclight_sd15_fbc.safetensors [fbc]", "iclight_sd15_fc.safetensors [fc]", "iclight_sd15_fcon.safetensors [fcon]"}, \
        "a label does not say what its file is"


def test_light_map_is_what_the_generation_encodes(a1111, client, monkeypatch):
    from modules import processing

    from iclight_a1111.webui import host as webui_host

    settings = {"light": "Placed", "lights": [{"x": 0.3, "y": 0.7, "radius": 0.6, "color": "#ffd0a0", "intensity": 1.2}],
                "shadow_color": "#101010", "falloff": 1.5}
    response = client.post("/iclight/v1/light-map", json={**settings, "width": 128, "height": 64})
    assert response.status_code == 200, response.text
    served = decode_png(response.json()["image"])
    assert served.shape == (64, 128, 3)

    encoded = []
    encode = webui_host.encode_images
    monkeypatch.setattr(webui_host, "encode_images", lambda images: encoded.append(list(images)) or encode(images))
    p = img2img([settings], [pil(subject(64))], steps=2, denoising_strength=0.9, width=128, height=64)
    processing.process_images(p)
    assert any(np.array_equal(i, served) for batch in encoded for i in batch), \
        "the endpoint's light map differs from the one the generation encoded"


@pytest.mark.parametrize("resize_mode", [0, 1, 2, 3])
def test_a_custom_light_map_is_laid_out_by_the_resize_mode_as_the_generation_lays_it_out(a1111, client, monkeypatch,
                                                                                        resize_mode):
    from modules import processing

    from iclight_a1111.webui import host as webui_host

    custom = encode_png(subject(48, seed=2)[:, :30])  # 30x48: another aspect than the 128x64 output
    settings = {"light": "Custom", "light_map": custom}
    body = {**settings, "width": 128, "height": 64, **({"resize_mode": resize_mode} if resize_mode else {})}
    response = client.post("/iclight/v1/light-map", json=body)
    assert response.status_code == 200, response.text
    served = decode_png(response.json()["image"])
    encoded = []
    encode = webui_host.encode_images
    monkeypatch.setattr(webui_host, "encode_images", lambda images: encoded.append(list(images)) or encode(images))
    p = img2img([settings], [pil(subject(64))], steps=2, denoising_strength=0.9, width=128, height=64,
                resize_mode=resize_mode)
    processing.process_images(p)
    assert any(np.array_equal(i, served) for batch in encoded for i in batch), \
        f"resize mode {resize_mode}: the endpoint's light map differs from the one the generation encoded"


def test_light_map_of_a_preset_has_the_requested_size(client):
    from iclight_a1111.images.light_maps import fc_light_map

    response = client.post("/iclight/v1/light-map", json={"light": "Top Right", "width": 96, "height": 40})
    assert np.array_equal(decode_png(response.json()["image"]), fc_light_map("Top Right", 96, 40))


@pytest.mark.parametrize("body,message", [
    ({"light": "Placed"}, "'Placed' but no light was placed"),
    ({"light": "Placed", "lights": [{"x": 2, "y": 0.5}]}, r"light 1: 'x' must be within 0\.\.1"),
    ({"light": "Placed", "lights": [{"x": 0.5, "y": 0.5, "radius": 0}]}, "light 1: 'radius' must be positive"),
    ({"light": "Sideways"}, "'light' must be one of"),
    ({"light": "None"}, "there is no light map"),
    ({"light": "Left", "width": 0}, "'width' must be a whole number of pixels within 8..2048"),
    ({"light": "Left", "strength": 2}, r"Unknown light map argument\(s\): strength"),
    ({"light": "Left", "resize_mode": 4}, "'resize_mode' must be an img2img resize mode within 0..3"),
    ({"light": "Custom"}, "no light map was given"),
])
def test_light_map_refusals_are_400_with_the_generation_message(client, body, message):
    import re

    response = client.post("/iclight/v1/light-map", json=body)
    assert response.status_code == 400, response.text
    assert re.search(message, response.json()["detail"]), response.json()["detail"]


def test_remove_background_returns_the_cut_out_the_generation_uses(a1111, client, tmp_path):
    from iclight_a1111.images.background_removal import load_rmbg, predict_alpha

    rmbg_folder = a1111.model_dir.parent / "rmbg"
    rmbg_folder.mkdir()
    rmbg = random_released_file(rmbg_folder / "model.safetensors")
    person = subject(48, seed=3)
    response = client.post("/iclight/v1/remove-background", json={"image": encode_png(person)})
    assert response.status_code == 200, response.text
    rgba = decode_png(response.json()["image"])
    alpha = predict_alpha(load_rmbg(rmbg), person)
    assert rgba.shape == (48, 48, 4) and np.array_equal(rgba[..., :3], person)
    assert np.array_equal(rgba[..., 3], (alpha * 255).round().astype(np.uint8)), "the alpha is not the remover's"


@pytest.mark.parametrize("body,message", [
    ({}, "needs 'image'"),
    ({"image": "%%%"}, "the string is not valid base64"),
    ({"image": encode_png(np.zeros((4, 4, 3), np.uint8)), "mode": "fast"}, "Unknown remove-background argument(s): mode"),
])
def test_remove_background_refusals_are_400(client, body, message):
    response = client.post("/iclight/v1/remove-background", json=body)
    assert response.status_code == 400 and message in response.json()["detail"], response.text


@pytest.mark.parametrize("args,message", [
    ({"model": "missing.safetensors"}, "missing.safetensors"),
    ({"light": "Sideways"}, "'light' must be one of"),
    ({"light": "Custom"}, "no light map was given"),
])
def test_a_refused_generation_through_sdapi_is_a_400_with_its_message_and_no_traceback(a1111, monkeypatch, args, message):
    """/sdapi/v1/img2img with IC-Light in `alwayson_scripts`: the refusal reaches A1111's error handler,
    which answers with the exception's `status_code` and prints a traceback for anything but an
    HTTPException."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from modules import processing
    from modules.api import api

    def img2img_api() -> dict:
        processing.process_images(img2img([args], [pil(subject(64))], steps=2, denoising_strength=0.9, width=64, height=64))
        return {"images": []}

    app = FastAPI()
    api.Api(app).add_api_route("/sdapi/v1/img2img", img2img_api, methods=["POST"])
    monkeypatch.setattr(api, "console", [])
    response = TestClient(app).post("/sdapi/v1/img2img")
    assert response.status_code == 400, f"a bad request answered {response.status_code}: {response.text}"
    assert message in response.json()["detail"], response.json()
    assert api.console == [], "A1111 printed a traceback for a refusal"


@pytest.mark.parametrize("width,height", [(8193, 8192), (13000, 13000), (20000, 20000)])
def test_an_image_above_the_size_limit_is_refused_with_413_before_decoding(client, width, height):
    """13000x13000 is under PIL's own refusal (which answered 500 for 20000x20000) and was decoded."""
    import time

    started = time.perf_counter()
    response = client.post("/iclight/v1/remove-background", json={"image": png_declaring(width, height)})
    assert response.status_code == 413, response.text
    assert "at most 67.1 megapixels (8192x8192)" in response.json()["detail"], response.json()
    assert time.perf_counter() - started < 2, "the image was decoded before it was refused"
    light_map = client.post("/iclight/v1/light-map", json={"light": "Custom", "light_map": png_declaring(width, height)})
    assert light_map.status_code == 413 and "megapixels" in light_map.json()["detail"], light_map.text


def test_an_image_at_the_size_limit_is_read_up_to_its_pixels(client):
    response = client.post("/iclight/v1/remove-background", json={"image": png_declaring(8192, 8192)})
    assert response.status_code == 400 and "not a readable PNG image" in response.json()["detail"], \
        "an image of exactly 8192x8192 is refused by size"


@pytest.mark.parametrize("key,args", [("light_map", {"light": "Custom"}), ("background", {"model": "iclight_sd15_fbc.safetensors"})])
def test_an_oversized_image_in_alwayson_scripts_is_a_413(a1111, monkeypatch, key, args):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from modules import processing
    from modules.api import api

    def img2img_api() -> dict:
        script_args = [{**args, key: png_declaring(20000, 20000)}]
        processing.process_images(img2img(script_args, [pil(subject(64))], steps=2, denoising_strength=0.9, width=64, height=64))
        return {"images": []}

    app = FastAPI()
    api.Api(app).add_api_route("/sdapi/v1/img2img", img2img_api, methods=["POST"])
    response = TestClient(app).post("/sdapi/v1/img2img")
    assert response.status_code == 413, response.text
    assert f"IC-Light '{key}' is too large to decode safely" in response.json()["detail"], response.json()
