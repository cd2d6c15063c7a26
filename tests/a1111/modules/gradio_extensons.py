"""Mirrors modules/gradio_extensons.py (v1.10.1) lines 17-18 and 37-44, the part about help: A1111
patches gradio so every component takes a `tooltip=` argument, kept as `webui_tooltip` and sent in
the component's config; javascript/hints.js (lines 194-203) then sets it as the hover title of the
element with the component's `elem_id`. (The before/after component callbacks the same patch runs
are left out: the tests announce A1111's components themselves.)"""
import gradio as gr

original_IOComponent_init = gr.components.IOComponent.__init__
original_Block_get_config = gr.blocks.Block.get_config


def IOComponent_init(self, *args, **kwargs):
    self.webui_tooltip = kwargs.pop("tooltip", None)
    return original_IOComponent_init(self, *args, **kwargs)


def Block_get_config(self):
    config = original_Block_get_config(self)
    if getattr(self, "webui_tooltip", None):
        config["webui_tooltip"] = self.webui_tooltip
    return config


gr.components.IOComponent.__init__ = IOComponent_init
gr.blocks.Block.get_config = Block_get_config
