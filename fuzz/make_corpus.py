#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into fuzz/corpus/<harness>/ (committed; rerun to refresh).

Small valid inputs of every kind each harness reads, and a few near misses, so that libFuzzer
starts past the magic numbers and checksums. The JPEGs need a C compiler and libjpeg's headers (libjpeg62-turbo-dev).
"""
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# IDX: first byte = mode (bit 0 labels, bit 1 the harness gzips the rest).
def idx_seeds():
    images = struct.pack(">IIII", 0x803, 2, 3, 4) + bytes(range(24))
    labels = struct.pack(">II", 0x801, 5) + bytes([7, 2, 1, 0, 4])
    put("idx", "images", b"\x00" + images)
    put("idx", "labels", b"\x01" + labels)
    put("idx", "images-gzipped-by-harness", b"\x02" + images)
    put("idx", "labels-gzipped-by-harness", b"\x03" + labels)
    put("idx", "images.gz", b"\x00" + gz(images))
    put("idx", "labels.gz", b"\x01" + gz(labels))
    put("idx", "images-truncated", b"\x00" + images[:-5])
    put("idx", "labels-extra-bytes", b"\x01" + labels + b"\x00\x00")
    put("idx", "images-empty", b"\x00" + struct.pack(">IIII", 0x803, 0, 28, 28))
    put("idx", "labels.gz-truncated", b"\x01" + gz(labels)[:-6])


def archive(meta, tensors, crc=True):
    """tensors: [(name, shape, [floats])]; crc=False leaves the CRC for the harness to add."""
    entries, data = [], b""
    for name, shape, values in tensors:
        entries.append({"name": name, "shape": shape, "offset": len(data)})
        data += struct.pack("<%df" % len(values), *values)
    header = json.dumps({"meta": meta, "tensors": entries}).encode()
    body = b"CNNARCH1" + struct.pack("<Q", len(header)) + header + data
    return body + struct.pack("<I", zlib.crc32(body)) if crc else body


# Archive: first byte = mode (bit 0 the harness appends the CRC, bit 1 also load as checkpoint).
def archive_seeds():
    rng = random.Random(0)
    small = [("x", [2, 3], [rng.uniform(-1, 1) for _ in range(6)]), ("y", [3], [1.0, 2.0, 3.0]),
             ("scalar", [], [0.5]), ("empty", [0, 4], [])]
    put("archive", "archive-with-crc", b"\x00" + archive({"k": 1}, small))
    put("archive", "archive-crc-by-harness", b"\x01" + archive({"k": [1, 2]}, small, crc=False))
    put("archive", "archive-bad-crc", b"\x00" + archive({}, small)[:-1] + b"\x00")
    put("archive", "archive-truncated", b"\x00" + archive({}, small)[:40])
    classes = 1
    shapes = [("conv1.0.weight", [16, 1, 3, 3]), ("conv1.0.bias", [16]),
              ("conv2.0.weight", [32, 16, 3, 3]), ("conv2.0.bias", [32]),
              ("classifier.1.weight", [32, 1568]), ("classifier.1.bias", [32]),
              ("classifier.4.weight", [classes, 32]), ("classifier.4.bias", [classes])]
    weights = []
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        weights.append(("model/" + name, shape, [rng.uniform(-0.1, 0.1) for _ in range(n)]))
    meta = {"format": "cnn-checkpoint", "version": 1,
            "architecture": {"name": "tutorial", "num_classes": classes, "input": [1, 28, 28]},
            "dataset": {"name": "mnist"}, "epoch": 1, "history": []}
    put("archive", "checkpoint", b"\x03" + archive(meta, weights, crc=False))
    put("archive", "checkpoint-no-weights", b"\x03" + archive(meta, weights[:2], crc=False))
    put("archive", "checkpoint-bad-version", b"\x03" + archive(dict(meta, version=2), [], crc=False))
    put("archive", "checkpoint-wrong-shape",
        b"\x03" + archive(meta, [("model/conv1.0.weight", [16, 3], [0.0] * 48)], crc=False))


def png(width, height, color_type, depth, rows, palette=None, interlace=False):
    """rows: the raw scanline bytes of each row (without the filter byte)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b""
    if interlace:  # Adam7, each pass's rows taken from a full-size picture (8-bit samples only)
        bpp = len(rows[0]) // width
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            for y in range(y0, height, dy):
                line = b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in range(x0, width, dx))
                if line:
                    raw += b"\x00" + line
    else:
        for i, r in enumerate(rows):
            raw += bytes([i % 5 if color_type != 3 else 0]) + filtered(r, i % 5, rows, i, color_type, depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth,
                                                            color_type, 0, 0, int(interlace)))
    if palette:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def filtered(row, kind, rows, i, color_type, depth):
    """The PNG filters (0 none, 1 sub, 2 up, 3 average, 4 Paeth), so the decoder runs all five."""
    bpp = max(1, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type] * depth // 8)
    prev = rows[i - 1] if i > 0 else bytes(len(row))
    out = bytearray()
    for x, v in enumerate(row):
        a = row[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if kind == 0:
            p = 0
        elif kind == 1:
            p = a
        elif kind == 2:
            p = b
        elif kind == 3:
            p = (a + b) // 2
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out.append((v - p) & 0xff)
    return bytes(out)


def bmp(width, height, gray, bits):
    """An uncompressed bottom-up BMP, 24 or 32 bits a pixel."""
    bpp = bits // 8
    stride = (width * bpp + 3) & ~3
    data = b""
    for y in reversed(range(height)):
        line = b"".join(bytes([gray[y][x]] * 3 + ([255] if bpp == 4 else [])) for x in range(width))
        data += line + bytes(stride - len(line))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(data), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(data), 0, 0, 14 + len(info)) + info + data


JPEG_WRITER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
/* jpeg OUT WIDTH HEIGHT COMPONENTS PROGRESSIVE < raw pixels */
int main(int argc, char** argv) {
  struct jpeg_compress_struct c; struct jpeg_error_mgr e;
  int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
  unsigned char* px = malloc(w * h * n);
  if (fread(px, 1, w * h * n, stdin) != (size_t)(w * h * n)) return 1;
  FILE* f = fopen(argv[1], "wb");
  c.err = jpeg_std_error(&e); jpeg_create_compress(&c); jpeg_stdio_dest(&c, f);
  c.image_width = w; c.image_height = h; c.input_components = n;
  c.in_color_space = n == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c); jpeg_set_quality(&c, 80, TRUE);
  if (atoi(argv[5])) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  for (int y = 0; y < h; ++y) { JSAMPROW r = px + y * w * n; jpeg_write_scanlines(&c, &r, 1); }
  jpeg_finish_compress(&c); fclose(f); return 0;
}
"""


def jpegs(tmp, gray, width, height):
    """Baseline, progressive and grayscale JPEGs through libjpeg (libjpeg-turbo's headers)."""
    src, exe = os.path.join(tmp, "jpeg.c"), os.path.join(tmp, "jpeg")
    with open(src, "w") as f:
        f.write(JPEG_WRITER)
    if subprocess.run(["cc", "-O1", src, "-o", exe, "-ljpeg"]).returncode != 0:
        print("make_corpus: no libjpeg headers, JPEG seeds not written")
        return {}
    flat = bytes(v for row in gray for v in row)
    rgb = bytes(v for v in flat for _ in range(3))
    out = {}
    for name, px, n, prog in [("digit.jpg", rgb, 3, 0), ("progressive.jpg", rgb, 3, 1),
                              ("gray.jpg", flat, 1, 0)]:
        path = os.path.join(tmp, name)
        subprocess.run([exe, path, str(width), str(height), str(n), str(prog)], input=px, check=True)
        with open(path, "rb") as f:
            out[name] = f.read()
    return out


def image_seeds():
    # A dark cross on white paper, as `cnn predict --image` expects a photo of a digit.
    w, h = 12, 10
    gray = [[0 if x in (y + 1, w - 2 - y) else 255 for x in range(w)] for y in range(h)]
    g8 = [bytes(r) for r in gray]
    put("image", "gray.png", png(w, h, 0, 8, g8))
    put("image", "rgb.png", png(w, h, 2, 8, [bytes(v for v in r for _ in range(3)) for r in gray]))
    # A stroke on a transparent canvas whose colour is black: only alpha tells paper from ink.
    put("image", "gray-alpha.png",
        png(w, h, 4, 8, [bytes(b for v in r for b in (0, 255 - v)) for r in gray]))
    put("image", "rgba.png",
        png(w, h, 6, 8, [bytes(b for v in r for b in (v, v, v, 255)) for r in gray]))
    put("image", "16bit.png", png(w, h, 0, 16, [bytes(b for v in r for b in (v, v)) for r in gray]))
    put("image", "1bit.png", png(8, 2, 0, 1, [b"\x3c", b"\xc3"]))
    put("image", "palette.png",
        png(w, h, 3, 8, [bytes(0 if v == 0 else 1 for v in r) for r in gray],
            palette=[(0, 0, 0), (255, 255, 255)]))
    put("image", "interlaced.png", png(w, h, 0, 8, g8, interlace=True))
    put("image", "digit.pgm", b"P5\n%d %d\n255\n" % (w, h) + b"".join(g8))
    put("image", "digit.ppm", b"P6\n%d %d\n255\n" % (w, h) +
        b"".join(bytes(v for v in r for _ in range(3)) for r in gray))
    put("image", "ascii.pgm", b"P2\n3 2\n255\n0 255 0\n255 0 255\n")
    put("image", "blank.pgm", b"P5\n4 4\n255\n" + b"\xff" * 16)  # no strokes: refused
    put("image", "digit.bmp", bmp(w, h, gray, 24))
    put("image", "digit-32bit.bmp", bmp(w, h, gray, 32))
    tmp = tempfile.mkdtemp()
    for name, data in jpegs(tmp, gray, w, h).items():
        put("image", name, data)
    shutil.rmtree(tmp)


# Explorer: first character = endpoint ('0' conv2d_steps ... '7' test_image, '8' model).
def explorer_seeds():
    grid = [[(r * 5 + c) % 7 for c in range(5)] for r in range(5)]
    digit = [[255 if 6 <= c <= 8 else 0 for c in range(14)] for _ in range(16)]
    pixels01 = [[1.0 if 12 <= c <= 15 else 0.0 for c in range(28)] for _ in range(28)]
    seeds = {
        "conv2d": ("0", {"image": grid, "kernel": [[1, 0], [0, -1]], "stride": 1,
                         "padding": [1, 0], "dilation": 1}),
        "maxpool2d": ("1", {"image": grid, "kernel_size": 2, "stride": [2, 1], "padding": 1,
                            "dilation": 1, "ceil_mode": True}),
        "shapes": ("2", {"input": [1, 28, 28], "layers": [
            {"type": "Conv2d", "out_channels": 16, "kernel_size": 3},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 1},
            {"type": "Flatten"}, {"type": "Dropout", "p": 0.3},
            {"type": "Linear", "out_features": 10}]}),
        "predict": ("3", {"pixels": digit}),
        "inside": ("4", {"pixels": pixels01}),
        "inside-step": ("5", {"pixels": pixels01, "channel": 3, "row": 5, "col": 7}),
        "inside-conv2-step": ("6", {"pixels": pixels01, "channel": 31, "row": 0, "col": 8}),
        "test-image": ("7", {"index": 2}),
        "model": ("8", {}),
        "not-an-object": ("0", [1, 2, 3]),
    }
    for name, (which, body) in seeds.items():
        put("explorer", name, which.encode() + json.dumps(body, separators=(",", ":")).encode())


if __name__ == "__main__":
    idx_seeds()
    archive_seeds()
    image_seeds()
    explorer_seeds()
