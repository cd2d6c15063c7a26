"""Mirrors backend/utils.py (Forge dfdcbab6) lines 57-61 (`set_attr_raw`) and 79-86 (`get_attr_with_parent`)."""


def set_attr_raw(obj, attr, value):
    *path, last = attr.split(".")
    for name in path:
        obj = getattr(obj, name)
    setattr(obj, last, value)


def get_attr_with_parent(obj, attr):
    parent, name = obj, None
    for name in attr.split("."):
        parent, obj = obj, getattr(obj, name)
    return parent, name, obj
