"""Stand-in for ADetailer (github Bing-su/adetailer, commit 36189cbe, version 25.3.0): the hooks it runs inside
a generation, as `scripts/!adetailer.py` and `aaaaaa/p_method.py` at that commit have them.

- `process` (lines 770-802): nothing IC-Light sees but ADetailer's own infotext keys.
- `postprocess_image` (lines 895-929), when enabled (`is_ad_enabled`, 179-196: the first argument a bool,
  default true, and a tab dict whose `ad_model` is not "None" and `ad_tab_enable` true, `need_skip` in
  adetailer/args.py 214-215):
  1. at batch index 0 (`need_call_postprocess`, p_method.py 12-15) `p.scripts.postprocess(copy(p),
     Processed(p, [], p.seed, ""))`, the prompts kept (`preserve_prompts`, aaaaaa/helper.py 56-64);
  2. per tab `_postprocess_image_inner` (804-893): the face pass `get_i2i_p` (498-565), an img2img of the
     image with ADetailer's settings, `do_not_save_samples`, the same seed (the tab's seed + the mask's number,
     `fix_p2` 751-768), `_ad_inner` set on it, and the scripts of `script_filter` (448-475): a copy of
     `p.scripts` keeping only the always-on scripts whose file name (stem) is listed in the setting
     `ad_script_names` (default `SCRIPT_DEFAULT`, adetailer/args.py 274-286) or built in (`soft_inpainting`,
     `hypertile_script`), all of them when `ad_only_selected_scripts` is off; one `process_images(p2)` per
     mask on a `copy` of it with `image_mask` set, `p2.close()` after each, each pass starting from the
     previous pass's result; `pp.image` becomes the last result;
  3. at the last index of the batch (`need_call_process`, p_method.py 4-9) `before_process` and `process`
     on `copy(p)`.

Departures: detection is `detect(image)`, a list of boxes (x1, y1, x2, y2), one centred box by default
(ADetailer runs a YOLO or mediapipe model; a random-weight YOLOv8n with `ad_confidence` 0 and `ad_mask_k` 1
gives one box too); each mask is the filled box grown as `cv2.dilate` with an `ad_dilate_erode` square kernel
grows it (adetailer/mask.py 32-66); offsets, merging, sorting and filtering the masks, ControlNet, "skip
img2img", checkpoint/VAE/sampler overrides, previews and the params.txt rewrite are left out. The face pass
uses the image's prompt embedding (the stand-in's prompts are embeddings), as ADetailer does with an empty
`ad_prompt`; the stand-in's img2img runs "Only masked" (`inpaint_full_res`) as "Whole picture".
"""
from __future__ import annotations

from contextlib import contextmanager
from copy import copy
from pathlib import Path

from PIL import Image, ImageDraw

from modules import processing, scripts, shared

SCRIPT_DEFAULT = "dynamic_prompting,dynamic_thresholding,lora_block_weight,negpip,wildcard_recursive,wildcards"
BUILTIN_SCRIPT = "hypertile_script,soft_inpainting"
TAB_DEFAULTS = {
    "ad_model": "None", "ad_tab_enable": True, "ad_dilate_erode": 4, "ad_mask_blur": 4,
    "ad_denoising_strength": 0.4, "ad_inpaint_only_masked": True, "ad_inpaint_only_masked_padding": 32,
}


def centre_box(image: Image.Image) -> list[tuple[int, int, int, int]]:
    w, h = image.size
    return [(w // 4, h // 4, 3 * w // 4 - 1, 3 * h // 4 - 1)]


detect = centre_box  # tests may replace it


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int], dilate: int) -> Image.Image:
    """`create_mask_from_bbox` (adetailer/common.py 122-146) then `dilate_erode` with a k x k rectangle:
    cv2's centred anchor grows a filled box by k - 1 - k // 2 before and k // 2 after, on each axis."""
    x1, y1, x2, y2 = box
    if dilate > 0:
        before, after = dilate - 1 - dilate // 2, dilate // 2
        x1, y1, x2, y2 = x1 - before, y1 - before, x2 + after, y2 + after
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((x1, y1, x2, y2), fill=255)
    return mask


def tabs(args) -> list[dict]:
    return [{**TAB_DEFAULTS, **a} for a in args if isinstance(a, dict)]


def is_ad_enabled(args) -> bool:
    active = [t for t in tabs(args) if t["ad_model"] != "None" and t["ad_tab_enable"] is not False]
    enabled = args[0] if args and isinstance(args[0], bool) else True
    return bool(active) and enabled


def get_i(p) -> int:
    return p.iteration * p.batch_size + p.batch_index


@contextmanager
def preserve_prompts(p):
    kept = {name: copy(getattr(p, name, None)) for name in ("all_prompts", "all_negative_prompts")}
    try:
        yield
    finally:
        for name, value in kept.items():
            setattr(p, name, value)


class AfterDetailerScript(scripts.Script):
    filename = "extensions/adetailer/scripts/!adetailer.py"
    alwayson = True

    def title(self):
        return "ADetailer"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def process(self, p, *args):
        if getattr(p, "_ad_disabled", False) or not is_ad_enabled(args):
            p._ad_disabled = True
            return
        p.extra_generation_params["ADetailer model"] = tabs(args)[0]["ad_model"]

    def postprocess_image(self, p, pp, *args):
        if getattr(p, "_ad_disabled", False) or not is_ad_enabled(args):
            return
        pp.image = pp.image.convert("RGB")
        if p.batch_index == 0:
            dummy = processing.Processed([], None, [], {})  # Processed(p, [], p.seed, ""): no images, no infotexts
            with preserve_prompts(p):
                p.scripts.postprocess(copy(p), dummy)
        for n, tab in enumerate(tabs(args)):
            if tab["ad_model"] != "None" and tab["ad_tab_enable"] is not False:
                self.face_pass(p, pp, tab)
        if p.batch_index == p.batch_size - 1:
            with preserve_prompts(p):
                copy_p = copy(p)
                p.scripts.before_process(copy_p)
                p.scripts.process(copy_p)

    def face_pass(self, p, pp, tab) -> bool:
        i2i = self.i2i_processing(p, tab, pp.image)
        masks = [box_mask(pp.image.size, box, tab["ad_dilate_erode"]) for box in detect(pp.image)]
        seed = p.all_seeds[get_i(p) % len(p.all_seeds)]
        processed = None
        p2 = copy(i2i)
        for j, mask in enumerate(masks):
            p2.image_mask = mask
            p2.init_images[0] = p2.init_images[0].convert("RGB")
            p2.seed = seed + j
            try:
                processed = processing.process_images(p2)
            finally:
                p2.close()
            p2 = copy(i2i)
            p2.init_images = [processed.images[0]]
        if processed is None:
            return False
        pp.image = processed.images[0]
        return True

    def i2i_processing(self, p, tab, image):
        i2i = processing.StableDiffusionProcessingImg2Img(
            cond=p.cond, uncond=p.uncond, init_images=[image], resize_mode=0, mask=None,
            denoising_strength=tab["ad_denoising_strength"], mask_blur=tab["ad_mask_blur"],
            inpaint_full_res=tab["ad_inpaint_only_masked"], sampler_name=p.sampler_name, batch_size=1, n_iter=1,
            steps=p.steps, cfg_scale=p.cfg_scale, width=p.width, height=p.height, outpath_samples=p.outpath_samples,
            extra_generation_params={k: v for k, v in p.extra_generation_params.items() if not callable(v)},
            do_not_save_samples=True,
        )
        i2i.scripts, i2i.script_args = self.script_filter(p)
        i2i._ad_disabled = True
        i2i._ad_inner = True
        return i2i

    @staticmethod
    def script_filter(p):
        runner = copy(p.scripts)
        script_args = type(p.script_args)(copy(a) for a in p.script_args)
        if not shared.opts.data.get("ad_only_selected_scripts", True):
            return runner, script_args
        names = shared.opts.data.get("ad_script_names", SCRIPT_DEFAULT).split(",") + BUILTIN_SCRIPT.split(",")
        wanted = {n for name in names for n in (name, name.strip())}
        runner.alwayson_scripts = [s for s in runner.alwayson_scripts if Path(s.filename).stem in wanted]
        return runner, script_args
