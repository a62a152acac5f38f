"""What keeps the embedded emulator's memory bounded in a long-running local stack.

moto is built for tests that reset it after a few seconds; the local stack runs it for days.
Two of its habits only grow (issue 16: the stack grew ~11 MB per 200 WebSocket partners who
came and went, and never gave it back):

- Every model object moto ever creates (each DynamoDB item version written, and the copies
  some reads make; each S3 object version; each metric datum) is appended to a list on its
  class, for moto's dashboard and its reset. Nothing else reads those lists, and the stack refuses moto's /moto-api/ (it is not
  signed with the stack's credentials), so the embedded emulator stops the tracking.
- A DynamoDB table with a sort key keeps a (then empty) partition for every partition key whose
  last item was deleted, and a GetItem of a missing key creates one: one left behind per
  WebSocket connection ever made. Deletes drop the partition they empty; reads no longer make one.

Both are switched on once per process by `keep_moto_memory_bounded()` (the emulator's start).
"""

from __future__ import annotations

import threading

_installed = False
_install_lock = threading.Lock()
# moto's server is threaded: a put that has just looked its partition up must not see a delete
# drop that partition before it stores the item (the item would vanish with it).
_partition_lock = threading.RLock()


def keep_moto_memory_bounded(log=None) -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        try:
            _stop_instance_tracking()
            _drop_empty_partitions()
        except (ImportError, AttributeError) as exc:  # moto's internals moved (tested with moto 5.2)
            if log:
                log(f"memory bounds for the embedded emulator are off with this moto version ({exc})")


def _stop_instance_tracking() -> None:
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def untracked_new(cls, *args, **kwargs):
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(untracked_new)
    reset_model_data()  # and forget what was tracked so far


def _drop_empty_partitions() -> None:
    from moto.dynamodb.models.table import Table

    put_item, get_item, delete_item = Table.put_item, Table.get_item, Table.delete_item

    def put_item_locked(self, *args, **kwargs):
        with _partition_lock:
            return put_item(self, *args, **kwargs)

    def get_item_without_creating(self, hash_key, range_key=None, projection_expression=None):
        if range_key and self.has_range_key and hash_key not in self.items:
            return None  # moto's defaultdict lookup would add an empty partition for the key
        return get_item(self, hash_key, range_key, projection_expression)

    def delete_item_dropping_empty(self, hash_key, range_key):
        with _partition_lock:
            item = delete_item(self, hash_key, range_key)
            if range_key and self.has_range_key and not self.items.get(hash_key, True):
                del self.items[hash_key]
            return item

    Table.put_item = put_item_locked
    Table.get_item = get_item_without_creating
    Table.delete_item = delete_item_dropping_empty
