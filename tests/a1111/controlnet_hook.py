"""Mirrors sd-webui-controlnet's `scripts/hook.py` (v1.1.455, `UnetHook.hook`, lines 449-992, the SD 1.x
ControlNet path): the UNet's `forward` is replaced *on the object* (`model._original_forward =
model.forward`, `model.forward = forward_webui.__get__(model, UNetModel)`), bypassing A1111's
class-level router to the active SdUnet. That forward runs the control model on the 4-channel `x` with the hint, then the UNet's
own `time_embed`, `input_blocks`, `middle_block` and `output_blocks`, adding the control residuals
(13 for SD 1.x: one per input block, the last at the middle block), and `out`.

The control model here is a second ldm UNet's encoder (`input_blocks` + `middle_block`) with a hint
added to its input, as ControlNet's is; residuals are scaled by the control weight.
"""
import torch
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from ldm.modules.diffusionmodules.util import timestep_embedding
from modules.scripts import Script


class ControlModel(torch.nn.Module):
    def __init__(self, encoder: UNetModel):
        super().__init__()
        self.encoder = encoder
        self.seen_x = []

    def forward(self, x, hint, timesteps, context):
        self.seen_x.append(x.detach().clone())
        enc = self.encoder
        emb = enc.time_embed(timestep_embedding(timesteps, enc.model_channels, repeat_only=False))
        h, outs = x + hint, []
        for module in enc.input_blocks:
            h = module(h, emb, context)
            outs.append(h)
        outs.append(enc.middle_block(h, emb, context))
        return outs


def hook(model: UNetModel, control_model: ControlModel, hint: torch.Tensor, weight: float) -> None:
    def forward(self, x, timesteps=None, context=None, y=None, **kwargs):
        control = [c * weight for c in control_model(x, hint.to(x), timesteps, context)]
        hs = []
        t_emb = timestep_embedding(timesteps, self.model_channels, repeat_only=False)
        emb = self.time_embed(t_emb)
        h = x
        for module in self.input_blocks:
            h = module(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        h = h + control.pop()
        for module in self.output_blocks:
            h = torch.cat([h, hs.pop() + control.pop()], dim=1)
            h = module(h, emb, context)
        h = h.type(x.dtype)
        return self.out(h)

    def forward_webui(*args, **kwargs):
        return forward(*args, **kwargs)

    model._original_forward = model.forward
    model.forward = forward_webui.__get__(model, UNetModel)


def restore(model: UNetModel) -> None:
    if hasattr(model, "_original_forward"):
        model.forward = model._original_forward
        del model._original_forward


class DetectMapScript(Script):
    """sd-webui-controlnet's `Script.postprocess` (scripts/controlnet.py, v1.1.455): each unit's detect map
    is appended to `processed.images`, without an infotext, after the results and whatever other
    scripts added; the script runs before or after IC-Light depending on the extension folder names."""

    args_from = args_to = 0

    def __init__(self, detect_maps):
        self.detect_maps = detect_maps

    def title(self):
        return "ControlNet"

    def postprocess(self, p, processed, *args):
        processed.images.extend(self.detect_maps)
