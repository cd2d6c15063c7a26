"""Mirrors modules/sd_models.py (v1.10.1) lines 56 and 183: `CheckpointInfo` (the fields read: filename, title,
model_name, short_title), the `checkpoints_list` registry and `get_closet_checkpoint_match`
(exact title, then model name, then a title containing the search, shortest first)."""
from dataclasses import dataclass

checkpoints_list = {}


@dataclass(frozen=True)
class CheckpointInfo:
    filename: str
    title: str
    model_name: str
    short_title: str = ""

    def register(self):
        checkpoints_list[self.title] = self
        return self


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoints_list.get(search_string)
    if info is not None:
        return info
    found = sorted([info for info in checkpoints_list.values() if search_string == info.model_name], key=lambda x: len(x.title))
    if found:
        return found[0]
    found = sorted([info for info in checkpoints_list.values() if search_string in info.title], key=lambda x: len(x.title))
    return found[0] if found else None
