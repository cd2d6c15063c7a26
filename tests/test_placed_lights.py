"""Placed lights: the light map they make (numbers), their API forms and refusals, the compact text form."""
import numpy as np
import pytest

from iclight_a1111.errors import IcLightError
from iclight_a1111.generation.infotext import infotext_entries
from iclight_a1111.generation.params import PARAMS, defaults
from iclight_a1111.generation.values import values_from_args
from iclight_a1111.images.placed_lights import PlacedLight, compact_text, parse_lights, placed_light_map

BLACK = (0, 0, 0)


def light(x=0.5, y=0.5, radius=0.5, color="#ffffff", intensity=1.0):
    return PlacedLight(x, y, radius, color, intensity)


@pytest.mark.parametrize("x,y", [(0.25, 0.4), (0.9, 0.1), (0.0, 1.0)])
def test_the_peak_is_at_the_placed_point(x, y):
    width, height = 200, 120
    image = placed_light_map((light(x, y, 0.3),), width, height, BLACK, 1.0)[..., 0].astype(int)
    peaks = np.argwhere(image == image.max())
    centres = peaks[:, ::-1] + 0.5  # (x, y) of each brightest pixel's centre
    distances = np.hypot(centres[:, 0] - x * width, centres[:, 1] - y * height)
    assert distances.max() <= 0.75, f"brightest pixels {peaks.tolist()} are not at the placed point {(x * width, y * height)}"
    assert image.max() >= int(255 * (1 - 0.75 / 36)), "the peak is dimmer than the light's colour"


def test_a_centred_light_is_symmetric_and_frontal():
    image = placed_light_map((light(),), 64, 96, BLACK, 1.0)
    assert np.array_equal(image, image[:, ::-1]) and np.array_equal(image, image[::-1]), "centred light not symmetric"
    assert image[48, 31, 0] > image[48, 16, 0] > image[48, 4, 0], "a centred light does not fall off towards the sides"


def test_colours_intensities_and_the_shadow_add():
    width, height = 80, 80
    at = (0.5 + 20) / width, (0.5 + 30) / height  # a pixel centre: the light's full value lands there
    red = placed_light_map((light(*at, color="#640000", intensity=1.0),), width, height, BLACK, 1.0).astype(int)
    green = placed_light_map((light(*at, color="#003200", intensity=2.0),), width, height, BLACK, 1.0).astype(int)
    both = placed_light_map((light(*at, color="#640000"), light(*at, color="#003200", intensity=2.0)),
                            width, height, (0, 0, 40), 1.0).astype(int)
    assert tuple(red[30, 20]) == (100, 0, 0) and tuple(green[30, 20]) == (0, 100, 0)
    blue = placed_light_map((light(*at, color="#0000c8", intensity=0.5),), width, height, BLACK, 1.0).astype(int)
    assert tuple(blue[30, 20]) == (0, 0, 100), "intensity does not scale the light's colour"
    assert tuple(both[30, 20]) == (100, 100, 40), "lights and shadow colour did not add at the light's centre"
    assert np.abs(both - (red + green + [0, 0, 40])).max() <= 1, "lights do not add everywhere"


def test_the_sum_is_clipped_to_255():
    image = placed_light_map((light(intensity=3.0), light(intensity=3.0)), 32, 32, (200, 200, 200), 1.0)
    assert image.max() == 255 and image.dtype == np.uint8


@pytest.mark.parametrize("falloff", [0.5, 1.0, 2.0])
def test_falloff_shapes_the_light_as_one_minus_distance_over_radius(falloff):
    width, height = 401, 201  # shorter side 201: radius 0.5 is 100.5 pixels
    image = placed_light_map((light(0.5, 0.5, 0.5),), width, height, BLACK, falloff)[100, :, 0].astype(int)
    radius = 0.5 * height
    for column in (200, 230, 260, 290):
        distance = abs(column + 0.5 - width / 2)
        expected = 255 * max(0.0, 1 - distance / radius) ** falloff
        assert abs(image[column] - expected) <= 1, f"falloff {falloff}: {image[column]} at d={distance}, expected {expected:.1f}"
    assert image[200 + 101] == 0 and image[200 - 101] == 0, "the light reaches past its radius"


def test_non_square_outputs_measure_the_radius_on_the_shorter_side_and_keep_the_aspect():
    wide = placed_light_map((light(0.5, 0.5, 0.25),), 300, 100, BLACK, 1.0)[..., 0]
    tall = placed_light_map((light(0.5, 0.5, 0.25),), 100, 300, BLACK, 1.0)[..., 0]
    assert wide.shape == (100, 300) and tall.shape == (300, 100)
    assert np.array_equal(wide, tall.T), "the same light differs between a wide and a tall output"
    lit_columns = np.flatnonzero(wide[50] > 0)
    assert 48 <= len(lit_columns) <= 50, f"radius 0.25 of 100 px should light about 50 columns, lit {len(lit_columns)}"


def test_compact_text_round_trips():
    lights = (light(0.2, 0.5, 0.4, "#ffffff", 1.0), light(0.75, 0.125, 1.5, "#ffd0a0", 0.6))
    text = compact_text(lights)
    assert text == "0.2,0.5,0.4,#ffffff,1;0.75,0.125,1.5,#ffd0a0,0.6"
    assert parse_lights(text) == lights
    assert parse_lights(text.replace(";", "\n")) == lights
    assert parse_lights("") == ()


def test_named_api_form_and_defaults():
    values = values_from_args([{"light": "Placed", "lights": [
        {"x": 0.25, "y": 0.4, "radius": 0.5, "color": "#FFD0A0", "intensity": 1.0}, {"x": 1, "y": 0}]}])
    assert values["light"] == "Placed"
    assert values["lights"] == (light(0.25, 0.4, 0.5, "#ffd0a0", 1.0), light(1.0, 0.0))


def test_positional_api_form_takes_lights_at_the_end():
    args = [defaults()[p.key] for p in PARAMS]
    args[0], args[2] = True, "Placed"
    index = [p.key for p in PARAMS].index("lights")
    args[index] = [{"x": 0.5, "y": 0.5}]
    assert values_from_args(args)["lights"] == (light(),)
    assert values_from_args(args[:index])["lights"] == (), "an older positional call (without lights) broke"


@pytest.mark.parametrize("lights,message", [
    ([{"x": 1.5, "y": 0.5}], r"light 1: 'x' must be within 0\.\.1"),
    ([{"x": 0.5, "y": 0.5}, {"x": 0.5, "y": -0.1}], r"light 2: 'y' must be within 0\.\.1"),
    ([{"x": 0.5, "y": 0.5, "radius": 0}], "light 1: 'radius' must be positive"),
    ([{"x": 0.5, "y": 0.5, "radius": -1}], "light 1: 'radius' must be positive"),
    ([{"x": 0.5, "y": 0.5, "size": 2}], r"light 1: unknown key\(s\) size"),
    ([{"x": 0.5, "y": 0.5, "color": "orange"}], "light 1: 'color' must be a colour like #ffaa00, got 'orange'"),
    ([{"x": 0.5, "y": 0.5, "color": 255}], "light 1: 'color' must be a colour"),
    ([{"x": "left", "y": 0.5}], "light 1: 'x' must be a number, got 'left'"),
    ([{"y": 0.5}], "light 1: 'x' is missing"),
    ([{"x": 0.5, "y": 0.5}] * 17, "17 lights given, at most 16"),
    ("0.5,0.5,0.5,#fffff,1", "light 1: 'color' must be a colour"),
    (3, "'lights' must be a list of lights"),
])
def test_bad_lights_are_refused_naming_the_light_and_the_field(lights, message):
    with pytest.raises(IcLightError, match=message):
        values_from_args([{"light": "Placed", "lights": lights}])


def test_placed_without_lights_is_refused():
    from iclight_a1111.generation.light_map import light_map_image

    with pytest.raises(IcLightError, match="'Placed' but no light was placed"):
        light_map_image(values_from_args([{"light": "Placed"}]), 64, 64)


def test_infotext_holds_the_lights_in_one_compact_field():
    values = {**defaults(), "light": "Placed", "lights": parse_lights("0.2,0.5,0.4,#ffffff,1;0.8,0.5,0.4,#ff0000,2")}
    entries = infotext_entries(values, "fc", True)
    assert entries["IC-Light lights"] == "0.2,0.5,0.4,#ffffff,1;0.8,0.5,0.4,#ff0000,2"
    assert values_from_args([{"lights": entries["IC-Light lights"]}])["lights"] == values["lights"]


def test_the_generation_encodes_the_placed_light_map(a1111, monkeypatch):
    from modules import processing

    from generation_harness import img2img, pil, subject
    from iclight_a1111.webui import host as webui_host

    encoded = []
    encode = webui_host.encode_images
    monkeypatch.setattr(webui_host, "encode_images", lambda images: encoded.append(list(images)) or encode(images))
    lights = [{"x": 0.3, "y": 0.6, "radius": 0.4, "color": "#ffd0a0", "intensity": 1.5}, {"x": 0.9, "y": 0.1}]
    p = img2img([{"light": "Placed", "lights": lights, "shadow_color": "#101020", "falloff": 2.0}], [pil(subject(64))],
                steps=2, denoising_strength=0.9, width=128, height=64)
    processing.process_images(p)
    expected = placed_light_map(parse_lights(lights), 128, 64, (16, 16, 32), 2.0)
    light_batches = [batch for batch in encoded if any(np.array_equal(i, expected) for i in batch)]
    assert light_batches, "the generation did not encode the placed light map"
    assert p.extra_generation_params["IC-Light lights"] == "0.3,0.6,0.4,#ffd0a0,1.5;0.9,0.1,0.5,#ffffff,1"


def test_placed_without_lights_stops_the_generation_with_the_refusal(a1111):
    from modules import processing

    from generation_harness import img2img, pil, subject

    p = img2img([{"light": "Placed"}], [pil(subject(64))], steps=2, denoising_strength=0.9)
    with pytest.raises(IcLightError, match="no light was placed"):
        processing.process_images(p)
