"""The README's light-map figure is what the extension's code draws today."""
from pathlib import Path

import numpy as np
from PIL import Image

from tools.light_map_figure import figure

COMMITTED = Path(__file__).parents[1] / "docs" / "light-maps.png"


def test_committed_light_map_figure_is_drawn_by_the_current_code():
    drawn = np.array(figure())
    committed = np.array(Image.open(COMMITTED).convert("RGB"))
    assert drawn.shape == committed.shape and np.array_equal(drawn, committed), (
        "docs/light-maps.png is out of date: run python -m tools.light_map_figure docs/light-maps.png")
