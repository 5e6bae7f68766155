"""Hex span and trace ids read in NumPy, for the OTLP mapping (used by ``otlp``).

Nearly every id an exporter writes is already what the store keeps: ``2 * nbytes`` hex
digits. Those are read here from the string array's bytes (no Python per id): lowercased, an
all-zero id, an empty one and none becoming null (no parent), exactly as the SQL macro
``otel_id`` does. Where every id is lowercase hex already (one ``bytes.translate`` finds it)
and none is all zeros, the bytes are kept as they are, without a copy and without a table
look-up per byte (NumPy's would widen each byte to an 8-byte index). Every other id (base64, another length, empty, not hex) is left to
``otel_id`` in the mapping query, which reads only the rows not read here.

Examples
--------
>>> import pyarrow as pa
>>> ids = pa.array(["00F067AA0BA902B7", "0000000000000000", "APBnqgupArc=", "", None])
>>> read, done = hex_ids(ids, 8)
>>> read.to_pylist(), done.tolist()
(['00f067aa0ba902b7', None, None, None, None], [True, True, False, True, True])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LOWER_HEX = b"0123456789abcdef"
_ZERO_WORD = np.frombuffer(b"0" * 8, dtype=np.uint64)[0]  # eight "0" digits as one word


def hex_ids(ids: pa.Array, nbytes: int) -> tuple[pa.Array, np.ndarray]:
    """Read the ids of ``ids`` that are ``2 * nbytes`` hex digits.

    Parameters
    ----------
    ids : pyarrow.StringArray
        Ids as exported.
    nbytes : int
        The id's length in bytes (16 for a trace id, 8 for a span id).

    Returns
    -------
    (pyarrow.StringArray, numpy.ndarray of bool)
        The lowercase id (null where it is all zeros, empty, null or not read here), and
        where it was read here; the other ids are for ``otel_id``.
    """
    n, width = len(ids), 2 * nbytes
    ids = ids.cast(pa.string())
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] else np.zeros(0, np.uint8)
    valid, sizes = np.asarray(pc.is_valid(ids), dtype=bool), np.diff(offsets)
    done = valid & (sizes == width)
    rows = np.flatnonzero(done)
    if np.array_equal(sizes != 0, done):  # the ids of this width are the data, back to back
        digits = data[offsets[0]:offsets[-1]].reshape(-1, width)
    else:
        digits = data[offsets[rows][:, None] + np.arange(width)]
    if digits.tobytes().translate(None, _LOWER_HEX):  # not all lowercase hex: the rows one by one
        lower = digits | 0x20  # "A"-"F" to "a"-"f"; no other byte becomes a digit
        hexadecimal = (((digits >= 48) & (digits <= 57)) | ((lower >= 97) & (lower <= 102))).all(axis=1)
        done[rows[~hexadecimal]] = False
        rows, digits = rows[hexadecimal], np.where(digits >= 65, lower, digits)[hexadecimal]
    done |= ~valid | (sizes == 0)  # no id, or an empty one: no id (null)
    zero = (np.ascontiguousarray(digits).view(np.uint64) == _ZERO_WORD).all(axis=1)
    if zero.any():
        rows, digits = rows[~zero], digits[~zero]
    have = np.zeros(n, dtype=bool)
    have[rows] = True
    value_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(have, width, 0), out=value_offsets[1:])
    read = pa.StringArray.from_buffers(n, pa.py_buffer(value_offsets), pa.py_buffer(np.ascontiguousarray(digits)),
                                       pa.py_buffer(np.packbits(have, bitorder="little")))
    return read, done

