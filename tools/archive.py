"""Reads and writes cnn's tensor archive (include/cnn/io/archive.h describes the layout)."""
import json
import struct
import zlib

import numpy as np

MAGIC = b"CNNARCH1"


def write_archive(path, tensors, meta=None):
    """tensors: an ordered dict name -> array (stored as float32)."""
    entries, blobs, offset = [], [], 0
    for name, value in tensors.items():
        arr = np.array(value, dtype=np.float32, order="C")  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
        entries.append({"name": name, "shape": list(arr.shape), "offset": offset})
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    header = json.dumps({"meta": meta or {}, "tensors": entries}).encode()
    body = MAGIC + struct.pack("<Q", len(header)) + header + b"".join(blobs)
    with open(path, "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF))


def read_archive(path):
    data = open(path, "rb").read()
    assert data[:8] == MAGIC, f"{path}: bad magic"
    (crc,) = struct.unpack("<I", data[-4:])
    assert zlib.crc32(data[:-4]) & 0xFFFFFFFF == crc, f"{path}: checksum mismatch"
    (hlen,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16 : 16 + hlen])
    start = 16 + hlen
    tensors = {}
    for e in header["tensors"]:
        n = int(np.prod(e["shape"])) if e["shape"] else 1
        arr = np.frombuffer(data, np.float32, n, start + e["offset"]).reshape(e["shape"])
        tensors[e["name"]] = arr
    return header["meta"], tensors
