"""IC-Light's endpoints (/iclight/v1/...), registered on A1111's FastAPI app when it starts: only when
A1111's own API is on (`--api`, or `--nowebui`), and with its `--api-auth` users."""
from modules import script_callbacks, shared

from iclight_a1111.webui import endpoints
from iclight_a1111.webui.backend_choice import host as webui_host


def add_endpoints(_demo, app) -> None:
    options = shared.cmd_opts
    if not (options.api or options.nowebui):
        return
    host = webui_host()
    endpoints.add_routes(app, host, host.exclusive, endpoints.api_credentials(options.api_auth))


script_callbacks.on_app_started(add_endpoints)
