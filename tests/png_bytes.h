// PNG files written byte by byte for the tests, so that every chunk, bit depth and colour type
// can be made (and broken) on purpose; the library's own writer makes only 8-bit RGB.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cnn::testing {

using Bytes = std::string;

inline Bytes be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
}

// A chunk: length, type, body, CRC-32 of type and body.
inline Bytes png_chunk(const std::string& type, const Bytes& body) {
  const Bytes tb = type + body;
  return be32(static_cast<uint32_t>(body.size())) + tb +
         be32(static_cast<uint32_t>(
             crc32(0, reinterpret_cast<const Bytef*>(tb.data()), static_cast<uInt>(tb.size()))));
}

// A non-interlaced PNG: `rows` holds each row's packed samples (no filter byte).
inline Bytes encode_png(uint32_t w, uint32_t h, int bit_depth, int color_type, const Bytes& rows,
                        const Bytes& extra_chunks = "") {
  const std::size_t stride = rows.size() / h;
  Bytes raw;
  for (uint32_t y = 0; y < h; ++y) raw += '\0' + rows.substr(y * stride, stride);
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes z(size, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
           static_cast<uLong>(raw.size()));
  z.resize(size);
  const Bytes ihdr = be32(w) + be32(h) + Bytes{char(bit_depth), char(color_type), 0, 0, 0};
  return Bytes("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + extra_chunks +
         png_chunk("IDAT", z) + png_chunk("IEND", "");
}

// An 8-bit PNG of colour type 0 (gray), 2 (RGB) or 6 (RGBA) from interleaved samples.
inline Bytes encode_png(uint32_t w, uint32_t h, int color_type,
                        const std::vector<uint8_t>& samples) {
  return encode_png(w, h, 8, color_type, Bytes(samples.begin(), samples.end()));
}

}  // namespace cnn::testing
