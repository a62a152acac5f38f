"""What keeps the embedded emulator's DynamoDB answers cheap to produce.

moto 5.2 writes every response through a generic serializer that walks botocore's output shape
and, for every member of every structure, looks the value up under several candidate names
(the member's name, its snake_case form, aliases). A DynamoDB item is a map of
`AttributeValue` structures with ten members of which exactly one is set, so each attribute of
each item costs ten or more look-ups. Measured (issue 16): a Scan of the 2,000 items of 1,000
WebSocket connections took 850 ms of CPU, 85 % of it in that serializer, while holding the
stack process's GIL; the local gateway's event loop stood still meanwhile, and every client's
bar of that moment was late (the live publisher's key check scans that table every 10 s).

moto's tables also list their items sorted by key for every Query and Scan (`Table.all_items`),
comparing `DynamoType` objects in Python (each comparison re-casts both values), and a Query of
the table (not an index) then keeps only the items of its partition: a Query of one connection's
items, or the publisher's poll of the version items every second, sorted all 2,000 items of the
table that way (18 % of the stack's busy time in the same bench). The same order now comes
from each item's key values computed once (`_sort_key`; a table's key attributes have one type
each, so the native comparison is the one `DynamoType` makes), and such a Query lists its
partition's items only.

`serialize_attribute_values_directly()` gives the serializer a shortcut for exactly that
shape: an `AttributeValue` given as a dict with one key that names one of its members is
serialized as that member alone, by the serializer's own method for the member's type (strings,
numbers, blobs base64-encoded, nested maps and lists through the same code). Anything else (more
keys, an unknown key, a value that is not a plain dict, a response transformer configured)
takes moto's own path. The wire answer is byte-identical (tests/unit/test_local_emulator_speed.py
compares both on items with every attribute type; tests/bench/bench_emulator.py prints the
scan's CPU with each serializer). Switched on once per process at the
emulator's start.
"""

from __future__ import annotations

import threading

_installed = False
_install_lock = threading.Lock()
_generic = None  # moto's own methods, kept (the tests compare both)
_generic_all_items = None
_generic_query = None


def serialize_attribute_values_directly(log=None) -> None:
    """Both shortcuts above, once per process."""
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
    _sort_items_by_native_keys()


def _sort_key(item):
    """moto's order of `Table.all_items`, by the key values instead of `DynamoType` objects."""
    if item.range_key:
        return (item.hash_key.cast_value, item.range_key.cast_value)
    return item.hash_key.cast_value


_querying = threading.local()  # the (table, partition key) this thread's Query of a table reads


def _sort_items_by_native_keys() -> None:
    global _generic_all_items, _generic_query
    from moto.dynamodb.models.table import Table

    _generic_all_items = Table.all_items
    _generic_query = Table.query

    def all_items(self):
        narrowed = getattr(_querying, "partition", None)
        if narrowed is not None and narrowed[0] is self:
            # A Query of the table itself: moto keeps only this partition's items of the list
            # (`item.hash_key == hash_key`); the others need not be listed and sorted first.
            partition = self.items.get(narrowed[1])
            if partition is None:
                return []
            return sorted(partition.values(), key=_sort_key) if self.range_key_attr else [partition]
        items = []
        for hash_set in list(self.items.values()):
            if self.range_key_attr:
                items.extend(list(hash_set.values()))
            else:
                items.append(hash_set)
        return sorted(items, key=_sort_key)

    def query(self, hash_key, *args, **kwargs):
        # moto's Query lists the table's items only to pick one partition's (no index: the
        # partition key condition); an index's Query lists them all, as before.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return _generic_query(self, hash_key, *args, **kwargs)
        _querying.partition = (self, hash_key)
        try:
            return _generic_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.partition = None

    Table.all_items = all_items
    Table.query = query
