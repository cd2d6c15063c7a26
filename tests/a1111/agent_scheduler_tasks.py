"""Stand-in for Agent Scheduler (github ArtVentureX/sd-webui-agent-scheduler, commit a3375332): how a queued task
keeps the scripts' arguments until it runs, as agent_scheduler/task_helpers.py and task_runner.py have it at
that commit.

- Queued from the UI (task_runner.py 107-135 and 159-198): the arguments of A1111's txt2img/img2img call
  after its named ones are the scripts' arguments as the components give them (IC-Light's uploads as numpy
  arrays, its lights as text); `serialize_script_args` (task_helpers.py 189-195) stores the list as
  `zlib.compress(pickle.dumps(args))`, `deserialize_script_args` (198-222) loads it back, and the task calls
  A1111's txt2img/img2img with it (task_runner.py 439-475).
- Queued through its API (api.py 112-155; task_runner.py 137-157, 200-235, 477-496): `serialize_api_task_args`
  (task_helpers.py 437-509) maps each always-on script's `args` with `map_named_script_args_to_list`
  (317-335: a list is kept as it is; a dict is matched to the names of the parameters of the script's
  `process` after `self, p`, with its `*args` taken from the key of that name); the request is stored as JSON
  (`json.dumps`) and run later with `Api.text2imgapi` / `img2imgapi` on the loaded JSON, where A1111 copies
  `args` into the script's slots, as many as the script has (modules/api/api.py 335-361 at v1.10.1).
"""
from __future__ import annotations

import inspect
import json
import pickle
import zlib
from typing import Any


def serialize_script_args(script_args: list) -> bytes:
    return zlib.compress(pickle.dumps(script_args))


def deserialize_script_args(blob: bytes) -> list:
    return pickle.loads(zlib.decompress(blob))


def map_named_script_args_to_list(script: Any, named_args: dict | list) -> list:
    if isinstance(named_args, dict):
        spec = inspect.getfullargspec(script.process)
        args = [named_args.get(name, None) for name in spec.args[2:]]
        if spec.varargs is not None:
            args.extend(named_args.get(spec.varargs, []))
        return args
    return named_args


def queue_api_task(request: dict, alwayson_scripts: list) -> str:
    """What the database keeps of an API request: its always-on scripts' `args` mapped, the request as JSON."""
    by_title = {s.title().lower(): s for s in alwayson_scripts}
    mapped = {}
    for name, value in request.get("alwayson_scripts", {}).items():
        if name.lower() in by_title:
            mapped[name] = {"args": map_named_script_args_to_list(by_title[name.lower()], value.get("args", []))}
    return json.dumps({"args": {**request, "alwayson_scripts": mapped}, "is_ui": False})


def stored_request(stored: str) -> dict:
    """The request the task runs with (task_runner.py 237-265)."""
    return json.loads(stored)["args"]


def fill_script_slots(request: dict, script: Any, defaults: list) -> list:
    """A1111's API (api.py 348-360): the script's slots hold its UI defaults, overwritten one by one by the
    request's `args` for its title (any case), as many as the script has."""
    args = list(defaults)
    for name, value in request.get("alwayson_scripts", {}).items():
        if name.lower() == script.title().lower():
            given = value.get("args", [])
            for index in range(min(len(defaults), len(given))):
                args[index] = given[index]
    return args
