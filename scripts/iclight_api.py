"""IC-Light's endpoints (/iclight/v1/...), registered on A1111's FastAPI app when it starts."""
from modules import script_callbacks

from iclight_a1111 import a1111_adapter, endpoints


def add_endpoints(_demo, app) -> None:
    host = a1111_adapter.A1111Host()
    endpoints.add_routes(app, host, host.exclusive)


script_callbacks.on_app_started(add_endpoints)
