"""The event ring: a single-producer single-consumer queue of (frame, status, data1, data2) records.

The producer (``Synth.send``, the MIDI thread, the control thread posting a command) writes record
``ring_events[write % capacity]`` and only then publishes ``ring_indices[RING_WRITE] = write + 1``;
the consumer (the render loop, in the audio thread) reads records up to the published index and
then advances ``ring_indices[RING_READ]``. The ring is full when ``write - read == capacity``;
``capacity`` is a power of two.

Ordering is explicit, not left to x86's store order: the indices are read and written with
relaxed (``monotonic``) atomic accesses, so the compiler can neither tear nor cache them, and
LLVM fences order them against the records, pairing as in C++'s fence-fence synchronisation:

- producer: write the record, *release* fence, store the write index;
- consumer: load the write index, *acquire* fence, read the records;
- consumer: *release* fence, store the read index (its reads of a slot are done);
- producer: load the read index, *acquire* fence, overwrite the freed slot.
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    RING_DATA1,
    RING_DATA2,
    RING_FRAME,
    RING_READ,
    RING_STATUS,
    RING_WRITE,
)

# The audio path's own flags, although the ring does no floating point: LLVM gives a function that
# inlines one without the fast-math attributes the weaker attributes (measured: render_block ran
# 2.6× slower with ring functions compiled without them).
RING_KERNEL = KERNEL
INDEX_BYTES = 8


def _fence(ordering: str):
    def codegen(context, builder, signature, args):
        builder.fence(ordering)
        return context.get_dummy_value()

    return codegen


@intrinsic
def release_fence(typingctx):
    """LLVM ``fence release``: memory operations before it are visible before any store after it."""
    return types.void(), _fence("release")


@intrinsic
def acquire_fence(typingctx):
    """LLVM ``fence acquire``: no memory operation after it is done before the loads before it."""
    return types.void(), _fence("acquire")


def _index_pointer(context, builder, array_type, array, index):
    return cgutils.get_item_pointer(context, builder, array_type, context.make_array(array_type)(
        context, builder, array), [index])


@intrinsic
def load_index(typingctx, indices, position):
    """``indices[position]`` as a relaxed atomic load (an int64 another thread writes)."""
    if not (isinstance(indices, types.Array) and indices.dtype == types.int64 and indices.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        pointer = _index_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "monotonic", INDEX_BYTES)

    return types.int64(indices, types.intp), codegen


@intrinsic
def store_index(typingctx, indices, position, value):
    """``indices[position] = value`` as a relaxed atomic store (an int64 another thread reads)."""
    if not (isinstance(indices, types.Array) and indices.dtype == types.int64 and indices.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        pointer = _index_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], pointer, "monotonic", INDEX_BYTES)
        return context.get_dummy_value()

    return types.void(indices, types.intp, types.int64), codegen


@njit(**RING_KERNEL)
def _load_acquire(ring_indices, position):
    """The other thread's index; what it did before storing it is visible after this call."""
    value = load_index(ring_indices, position)
    acquire_fence()
    return value


@njit(**RING_KERNEL)
def ring_publish(ring_events, ring_indices, frame, status, data1, data2):
    """Producer: append one record and publish it. False (nothing written) when the ring is full."""
    write = ring_indices[RING_WRITE]  # only the producer stores it
    capacity = ring_events.shape[0]
    if write - _load_acquire(ring_indices, RING_READ) >= capacity:  # the consumer is done with freed slots
        return False
    record = write & (capacity - 1)
    ring_events[record, RING_FRAME] = frame
    ring_events[record, RING_STATUS] = status
    ring_events[record, RING_DATA1] = data1
    ring_events[record, RING_DATA2] = data2
    release_fence()  # the record is complete before the index that publishes it
    store_index(ring_indices, RING_WRITE, write + 1)
    return True


@njit(**RING_KERNEL)
def ring_published(ring_indices):
    """Consumer: the write index; every record before it may be read after this call."""
    return _load_acquire(ring_indices, RING_WRITE)


@njit(**RING_KERNEL)
def ring_consumed(ring_indices, read):
    """Consumer: records before ``read`` are done with; the producer may overwrite them."""
    release_fence()
    store_index(ring_indices, RING_READ, read)


@njit(**RING_KERNEL)
def ring_read_position(ring_indices):
    """Producer: the read index; records before it, and data staged for them, may be reused after this call."""
    return _load_acquire(ring_indices, RING_READ)


@njit(**RING_KERNEL)
def ring_queued(ring_indices):
    """Records published and not yet consumed (from either side, a snapshot)."""
    return load_index(ring_indices, RING_WRITE) - load_index(ring_indices, RING_READ)
