"""IC-Light's long work (merging, downloads, background removal) in A1111's progress bar and the console."""
from __future__ import annotations

from tqdm import tqdm
from modules import shared

from ..progress import use


class WebuiProgress:
    """IC-Light's long work in A1111's progress bar (`shared.state`: its text and the steps of the
    current job, which the sampler resets when it starts) and in the console (tqdm)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def begin(self, text: str, total: int) -> None:
        self.bar = tqdm(total=total, desc=text, leave=False)
        shared.state.textinfo = text
        shared.state.sampling_steps, shared.state.sampling_step = total, 0

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)
        shared.state.sampling_step += steps

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None
        shared.state.textinfo = None
        shared.state.sampling_step = 0


def install() -> None:
    """Report IC-Light's progress through A1111 from now on."""
    use(WebuiProgress())
