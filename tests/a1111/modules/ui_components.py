"""Mirrors modules/ui_components.py (v1.10.1): `ToolButton`, and `InputAccordion`, a hidden checkbox
(the input) that opens and closes an accordion (the layout).

A1111 has applied its gradio patches (modules/gradio_extensons.py) before any script imports this
module; importing the stand-in here applies them in the tests too."""
import gradio as gr

import modules.gradio_extensons  # noqa: F401


class ToolButton(gr.Button):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


class InputAccordion(gr.Checkbox):
    def __init__(self, value, **kwargs):
        super().__init__(value, **{**kwargs, "visible": False})
        self.accordion = gr.Accordion(label=kwargs.get("label", "Accordion"), open=value)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.accordion.__exit__(exc_type, exc_val, exc_tb)
