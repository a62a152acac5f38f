"""What keeps the embedded emulator's DynamoDB answers cheap to produce.

moto 5.2 writes every response through a generic serializer that walks botocore's output shape
and, for every member of every structure, looks the value up under several candidate names
(the member's name, its snake_case form, aliases). A DynamoDB item is a map of
`AttributeValue` structures with ten members of which exactly one is set, so each attribute of
each item costs ten or more look-ups. Measured (issue 16): a Scan of the 2,000 items of 1,000
WebSocket connections took 850 ms of CPU, 85 % of it in that serializer, while holding the
stack process's GIL; the local gateway's event loop stood still meanwhile, and every client's
bar of that moment was late (the live publisher's key check scans that table every 10 s).

`serialize_attribute_values_directly()` gives the serializer a shortcut for exactly that
shape: an `AttributeValue` given as a dict with one key that names one of its members is
serialized as that member alone, by the serializer's own method for the member's type (strings,
numbers, blobs base64-encoded, nested maps and lists through the same code). Anything else (more
keys, an unknown key, a value that is not a plain dict, a response transformer configured)
takes moto's own path. The wire answer is byte-identical (tests/unit/test_local_emulator_speed.py
compares both on items with every attribute type). Switched on once per process at the
emulator's start.
"""

from __future__ import annotations

import threading

_installed = False
_install_lock = threading.Lock()
_generic = None  # moto's own method, kept (the tests compare both)


def serialize_attribute_values_directly(log=None) -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        try:
            _install()
        except (ImportError, AttributeError) as exc:  # moto's internals moved (tested with moto 5.2)
            if log:
                log(
                    f"the fast DynamoDB answers of the embedded emulator are off with this moto version ({exc})"
                )


def _install() -> None:
    global _generic
    from moto.core.serialize import BaseJSONSerializer

    generic = _generic = BaseJSONSerializer._serialize_type_structure

    def _serialize_type_structure(self, serialized, value, shape, key):
        if shape.name == "AttributeValue" and key and type(value) is dict and len(value) == 1:
            ((member_key, member_value),) = value.items()
            member_shape = shape.members.get(member_key)
            if (
                member_shape is not None
                and member_value is not None
                and not getattr(self._value_picker, "response_transformers", None)
            ):
                # What moto's loop over the members ends with: only this member is set.
                member_shape.parent = shape
                wrapper = self.MAP_TYPE()
                self._serialize(wrapper, member_value, member_shape, member_key)
                self._default_serialize(serialized, wrapper, shape, key)
                return
        generic(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure
