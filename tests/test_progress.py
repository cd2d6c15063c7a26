"""The library's progress reports: one begin, a step per item, an end also when the work fails."""
import pytest

from iclight_a1111 import progress


class Recorder:
    def __init__(self):
        self.calls = []

    def begin(self, text, total):
        self.calls.append(("begin", text, total))

    def advance(self, steps=1):
        self.calls.append(("advance", steps))

    def end(self):
        self.calls.append(("end",))


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(progress, "REPORTER", [recorder])
    return recorder


def test_tracked_reports_each_item_of_a_generator(recorder):
    assert list(progress.tracked((i for i in range(3)), "work")) == [0, 1, 2]
    assert recorder.calls == [("begin", "work", 3), ("advance", 1), ("advance", 1), ("advance", 1), ("end",)]


def test_a_failing_task_still_ends(recorder):
    with pytest.raises(RuntimeError):
        for item in progress.tracked([1, 2], "work"):
            raise RuntimeError(item)
    assert recorder.calls[-1] == ("end",)
