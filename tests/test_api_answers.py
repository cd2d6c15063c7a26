"""What the API answers: a client's fault a 4xx without a traceback, a fault of the server's a 5xx with its
traceback logged once (and Retry-After where a later try can succeed); an `infotext` and a named dict
combined; what `/sdapi/v1/png-info` reports of an IC-Light result."""
import base64
import io

import pytest
from PIL import Image, PngImagePlugin

from generation_harness import img2img, pil, subject, txt2img
from test_endpoints import webui_app
from test_restore_failure import OutOfMemory

TRACEBACK = "Traceback (most recent call last)"


def failed_restore(a1111, monkeypatch):
    a1111.activate("fc")
    OutOfMemory(monkeypatch)
    with pytest.raises(Exception, match="could not give the checkpoint its own weights back"):
        a1111.deactivate()
    return txt2img([{"enabled": False}], steps=2)


def failed_download(a1111, monkeypatch):
    for f in a1111.model_dir.iterdir():
        f.unlink()
    return txt2img([{"foreground": subject()}], steps=2)


def unreadable_model_file(a1111, monkeypatch):
    (a1111.model_dir / "iclight_sd15_fc.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    return txt2img([{"model": "iclight_sd15_fc.safetensors", "foreground": subject()}], steps=2)


def switched_off_mid_generation(a1111, monkeypatch):
    from modules import sd_unet

    calls = []

    def reload_on_second_call(module, args):
        calls.append(1)
        if len(calls) == 2:
            sd_unet.apply_unet("None")

    a1111.unet.time_embed.register_forward_pre_hook(reload_on_second_call)  # this test's model only
    return txt2img([{"foreground": subject()}], steps=4)


FAULTS = {
    "a restore that failed": (failed_restore, 503, "could not give the checkpoint its own weights back"),
    "a failed download": (failed_download, 502, "Could not download iclight_sd15_fc.safetensors"),
    "an unreadable model file": (unreadable_model_file, 500, "could not be read as a safetensors file"),
    "IC-Light switched off mid-generation": (switched_off_mid_generation, 500, "switched off during this generation"),
}


def txt2img_route(p):
    def txt2img_api() -> dict:
        from modules import processing

        processing.process_images(p)
        return {"images": []}

    return [("/sdapi/v1/txt2img", txt2img_api)]


@pytest.mark.parametrize("case", list(FAULTS))
def test_server_faults_answer_5xx_with_their_traceback_logged_once(a1111, monkeypatch, capsys, case):
    from modules.api import api

    make_p, status, message = FAULTS[case]
    client = webui_app(monkeypatch, routes=txt2img_route(make_p(a1111, monkeypatch)))
    monkeypatch.setattr(api, "console", [])
    capsys.readouterr()
    response = client.post("/sdapi/v1/txt2img")
    logged = capsys.readouterr().err
    assert response.status_code == status, f"{case}: {response.status_code} {response.text}"
    assert message in response.json()["detail"], response.json()
    reports = logged.count("IC-Light: POST /sdapi/v1/txt2img failed")
    assert reports == 1 and TRACEBACK in logged and message in logged, f"{case}: logged {reports} times: {logged[:300]}"
    assert api.console == [], "A1111's own handler logged it a second time"
    assert response.headers.get("Retry-After") == ("30" if status == 503 else None), dict(response.headers)


def test_client_faults_answer_4xx_without_a_traceback(a1111, monkeypatch, capsys):
    from modules.api import api

    p = txt2img([{"foreground": subject(), "light_map": "not base64 at all"}], steps=2)
    client = webui_app(monkeypatch, routes=txt2img_route(p))
    monkeypatch.setattr(api, "console", [])
    capsys.readouterr()
    response = client.post("/sdapi/v1/txt2img")
    assert response.status_code == 400 and "'light_map'" in response.json()["detail"], response.text
    assert TRACEBACK not in capsys.readouterr().err and api.console == []


def script_args_of_request(inputs, infotext_params, fields, request_args):
    """The script args A1111 builds for a request with `infotext` and `alwayson_scripts` (api.py v1.10.1
    `init_default_script_args` 315-333, `apply_infotext` 363-429, `init_script_args` 334-360): the panel's
    defaults, what the infotext sets through the paste fields, then the request's args from the first place."""
    from modules.api.api import infotext_script_args
    from modules.infotext_utils import PasteField

    args = [component.value for component in inputs]
    for index, value in infotext_script_args(infotext_params, [PasteField(*f) for f in fields], inputs).items():
        args[index] = value
    args[:len(request_args)] = request_args
    return args


def test_api_infotext_with_a_named_dict_keeps_what_the_dict_does_not_name(a1111):
    from modules import processing

    from test_script_integration import panels

    script, inputs = panels()["img2img"]
    params = {"IC-Light model": "iclight_sd15_fc.safetensors", "IC-Light light": "Right", "IC-Light falloff": "2.0"}
    args = script_args_of_request(inputs, params, script.infotext_fields, [{"falloff": 3.0, "shadow_color": "#202020"}])
    p = img2img(args, [pil(subject())], steps=2, denoising_strength=0.9)
    processing.process_images(p)
    written = p.extra_generation_params
    assert written.get("IC-Light light") == "Right", f"the infotext's light was reset to the default: {written}"
    assert written.get("IC-Light falloff") == "3.0", "the dict did not override the infotext"
    assert written.get("IC-Light shadow color") == "#202020"


def test_png_info_reports_iclight_on_and_the_model_label(a1111, monkeypatch):
    from modules import processing

    from generation_harness import script_module

    script_module()  # loaded as A1111 loads it: its callbacks registered
    processed = processing.process_images(txt2img([{"foreground": subject()}], steps=2))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", processed.infotexts[0])
    buffer = io.BytesIO()
    processed.images[0].save(buffer, format="PNG", pnginfo=info)
    client = webui_app(monkeypatch)
    response = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(buffer.getvalue()).decode()})
    parameters = response.json()["parameters"]
    assert parameters.get("IC-Light enabled") is True, parameters
    assert parameters.get("IC-Light model") == "iclight_sd15_fc.safetensors [fc]", parameters
    plain = Image.new("RGB", (8, 8))
    plain.save(buffer := io.BytesIO(), format="PNG")
    response = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(buffer.getvalue()).decode()})
    assert "IC-Light enabled" not in response.json()["parameters"]


def test_faults_are_answered_with_retry_after_also_when_the_app_has_served_before(capsys):
    """Forge's gradio 4 serves a request at launch, before the extensions' `app_started`: Starlette's middleware
    stack, with the exception handlers, is built then. Forge's own handler of `Exception` (webui.py at dfdcbab6,
    lines 30-38) answers with the exception's status and no headers, and the server logs the traceback."""
    from fastapi import FastAPI
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    from iclight_a1111.errors import RetryLater
    from iclight_a1111.webui import api_errors

    def forge_handler(request, e):
        fields = vars(e)
        return JSONResponse(status_code=int(fields.get("status_code", 500)),
                            content=jsonable_encoder({"error": type(e).__name__, "detail": fields.get("detail", "")}))

    def restore_failed():
        raise RetryLater("IC-Light could not give the checkpoint its own weights back (simulated).")

    app = FastAPI(exception_handlers={Exception: forge_handler})
    app.add_api_route("/sdapi/v1/txt2img", restore_failed, methods=["POST"])
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/sdapi/v1/txt2img").headers.get("Retry-After") is None  # the stack is built now
    api_errors.install(app)
    capsys.readouterr()
    response = client.post("/sdapi/v1/txt2img")
    assert response.status_code == 503 and response.headers.get("Retry-After") == "30", dict(response.headers)
    assert capsys.readouterr().err.count("IC-Light: POST /sdapi/v1/txt2img failed (503)") == 1
