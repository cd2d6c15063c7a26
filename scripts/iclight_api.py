"""IC-Light's endpoints (/iclight/v1/...), registered on A1111's FastAPI app when it starts."""
from modules import script_callbacks

from iclight_a1111.webui import endpoints
from iclight_a1111.webui.host import A1111Host


def add_endpoints(_demo, app) -> None:
    host = A1111Host()
    endpoints.add_routes(app, host, host.exclusive)


script_callbacks.on_app_started(add_endpoints)
