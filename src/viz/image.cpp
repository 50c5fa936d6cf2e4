#include "cnn/viz/image.h"

#include <png.h>
#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <system_error>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
// After jpeglib.h, which it completes.
#include <jerror.h>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/limits.h"

namespace cnn {

namespace {
constexpr uint8_t kViridis[256][3] = {
#include "viridis.inc"
};
}  // namespace

RgbImage::RgbImage(int64_t w, int64_t h, std::array<uint8_t, 3> background)
    : width(w), height(h), rgb(static_cast<std::size_t>(w * h * 3)) {
  for (int64_t i = 0; i < w * h; ++i) std::copy(background.begin(), background.end(), &rgb[i * 3]);
}

void RgbImage::set(int64_t x, int64_t y, std::array<uint8_t, 3> c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  std::copy(c.begin(), c.end(), &rgb[(y * width + x) * 3]);
}

std::array<uint8_t, 3> RgbImage::get(int64_t x, int64_t y) const {
  const uint8_t* p = &rgb[(y * width + x) * 3];
  return {p[0], p[1], p[2]};
}

namespace {

// Why libpng and libjpeg-turbo rather than stb_image (Debian's libstb, 2022-09) or a newer
// vendored stb header: stb_image fills what a truncated file lacks with zeros and says nothing
// (a 695-byte BMP declaring 16,711,964 x 28 pixels became a 1.84 GB picture), its JPEG decoder
// has known out-of-bounds reads on crafted Huffman tables, and a vendored header would be ours to
// patch by hand for every later report. libpng and libjpeg-turbo are fuzzed continuously by
// OSS-Fuzz, patched by Debian's security team with the rest of the system, and report a
// truncated or corrupt file as an error (libjpeg's warnings, JWRN_JPEG_EOF among them, are made
// errors below). PGM/PPM and BMP are simple enough to parse here, strictly, with every size
// checked against the file before anything is allocated.

// Pixels as decoded, 8 bits a sample: 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) channels.
struct Raster {
  int64_t width = 0, height = 0;
  int channels = 0;
  std::vector<uint8_t> samples;  // row-major, `channels` samples a pixel
};

enum class Want { Gray, Rgb };  // lets a JPEG decode its luma alone when gray is wanted

// An open image file and its size; errors name the file.
class ImageFile {
 public:
  explicit ImageFile(std::string path) : path_(std::move(path)), f_(nullptr, std::fclose) {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) {
      throw Error(path_ + ": is a directory, not an image");
    }
    f_.reset(std::fopen(path_.c_str(), "rb"));
    if (!f_) {
      const int err = errno;
      const std::string why = err == ENOENT ? "no such file"
                              : err == EACCES
                                  ? "permission denied"
                                  : std::error_code(err, std::generic_category()).message();
      throw Error(path_ + ": cannot open image (" + why + ")");
    }
    const auto size = std::filesystem::file_size(path_, ec);
    if (ec) throw Error(path_ + ": cannot open image (" + ec.message() + ")");
    size_ = static_cast<int64_t>(size);
  }
  FILE* get() const { return f_.get(); }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& format, const std::string& why) const {
    throw Error(path_ + ": cannot read image: " + format + ": " + why);
  }
  // The pixel count a header declares, refused above cnn::limits::kMaxImagePixels (2^26, 8192 x
  // 8192: a photo of a digit needs a few megapixels at most) before any pixel buffer is
  // allocated; at the limit a decode holds at most 256 MiB (RGBA).
  void check_size(const std::string& format, int64_t w, int64_t h) const {
    if (w <= 0 || h <= 0) {
      fail(format,
           "the header declares " + std::to_string(w) + " x " + std::to_string(h) + " pixels");
    }
    if (w > limits::kMaxImagePixels / h) {
      throw Error(path_ + ": " + format + " image of " + std::to_string(w) + " x " +
                  std::to_string(h) + " pixels: more than the limit of " +
                  std::to_string(limits::kMaxImagePixels) + " pixels; scale the picture down");
    }
  }
  // Reads exactly n bytes or fails naming what was being read.
  void read(void* dst, std::size_t n, const std::string& format, const char* what) const {
    if (std::fread(dst, 1, n, f_.get()) != n) {
      fail(format, std::string("truncated: the file ends in the ") + what + " (" +
                       std::to_string(size_) + " bytes)");
    }
  }

 private:
  std::string path_;
  std::unique_ptr<FILE, int (*)(FILE*)> f_;
  int64_t size_ = 0;
};

// ---- PNG (libpng) --------------------------------------------------------------------------
// libpng reports errors by longjmp to the setjmp of the png_* call's caller. Each png_setjmp_*
// function below holds no object with a destructor, so the longjmp skips none (C++ allows it
// then); the caller turns `false` into a cnn::Error.

struct PngContext {
  FILE* f = nullptr;
  bool truncated = false;
  char message[256] = {};
};

void png_read_callback(png_structp png, png_bytep data, size_t n) {
  auto* c = static_cast<PngContext*>(png_get_io_ptr(png));
  if (std::fread(data, 1, n, c->f) != n) {
    c->truncated = true;
    png_error(png, "truncated");
  }
}
void png_error_callback(png_structp png, png_const_charp message) {
  auto* c = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(c->message, sizeof c->message, "%s", message);
  png_longjmp(png, 1);
}
// Warnings concern ancillary chunks (a colour profile libpng knows to be wrong, a bad text
// chunk) and leave the pixels intact; the library prints nothing.
void png_warning_callback(png_structp, png_const_charp) {}

bool png_setjmp_header(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  return true;
}

// To 8-bit gray, gray + alpha, RGB or RGBA: palettes and low bit depths expanded, tRNS made an
// alpha channel, 16-bit samples cut to their high byte (as stb_image did).
bool png_setjmp_transform(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return true;
}

// Reads up to IEND, so that a file cut after its last pixel row is refused too.
bool png_setjmp_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

// A PNG's pixels are deflated rows, each a filter byte and the row's packed samples. Deflate
// expands at most 1032-fold (a 258-byte match coded in 2 bits; RFC 1951), so a file too small to
// hold the rows its header declares is refused before the pixel buffer is allocated (a 100-byte
// PNG declaring 8192 x 8192 would otherwise take 256 MiB before libpng found the data missing).
void check_png_fits(const ImageFile& file, png_structp png, png_infop info) {
  const auto width = static_cast<uint64_t>(png_get_image_width(png, info));
  const auto height = static_cast<uint64_t>(png_get_image_height(png, info));
  const uint64_t bits =
      static_cast<uint64_t>(png_get_channels(png, info)) * png_get_bit_depth(png, info);
  const uint64_t filtered = height * ((width * bits + 7) / 8 + 1);  // under 2^26 * 65, no wrap
  constexpr uint64_t kDeflateMaxRatio = 1032;
  if (filtered / kDeflateMaxRatio > static_cast<uint64_t>(file.size())) {
    file.fail("PNG", "truncated: the header declares " + std::to_string(width) + " x " +
                         std::to_string(height) + " pixels, " + std::to_string(filtered) +
                         " bytes of rows, which no " + std::to_string(file.size()) +
                         "-byte file can hold");
  }
}

Raster decode_png(const ImageFile& file) {
  PngContext ctx;
  ctx.f = file.get();
  struct Reader {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~Reader() { png_destroy_read_struct(&png, &info, nullptr); }
  } reader;
  reader.png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_callback, png_warning_callback);
  if (reader.png) reader.info = png_create_info_struct(reader.png);
  if (!reader.info) file.fail("PNG", "out of memory");
  png_structp png = reader.png;
  png_infop info = reader.info;
  png_set_read_fn(png, &ctx, png_read_callback);
  const auto failed = [&]() -> std::string {
    return ctx.truncated ? "truncated: the file ends before the image does (" +
                               std::to_string(file.size()) + " bytes)"
                         : std::string(ctx.message);
  };
  if (!png_setjmp_header(png, info)) file.fail("PNG", failed());
  file.check_size("PNG", png_get_image_width(png, info), png_get_image_height(png, info));
  check_png_fits(file, png, info);
  if (!png_setjmp_transform(png, info)) file.fail("PNG", failed());
  Raster r;
  r.width = png_get_image_width(png, info);
  r.height = png_get_image_height(png, info);
  r.channels = png_get_channels(png, info);
  const std::size_t stride = png_get_rowbytes(png, info);
  if (r.channels < 1 || r.channels > 4 ||
      stride != static_cast<std::size_t>(r.width) * r.channels) {
    file.fail("PNG", "unexpected layout after conversion to 8 bits");
  }
  r.samples.resize(stride * static_cast<std::size_t>(r.height));
  std::vector<png_bytep> rows(static_cast<std::size_t>(r.height));
  for (std::size_t y = 0; y < rows.size(); ++y) rows[y] = r.samples.data() + y * stride;
  if (!png_setjmp_pixels(png, rows.data())) file.fail("PNG", failed());
  return r;
}

// ---- JPEG (libjpeg-turbo) ------------------------------------------------------------------
// The same longjmp discipline as for PNG. Every libjpeg warning is treated as an error, as
// TurboJPEG's TJFLAG_STOPONWARNING does: its warnings are corrupt data (a bad Huffman code,
// extraneous bytes) or a premature end of file (JWRN_JPEG_EOF), after which libjpeg would go on
// and fill the rest of the picture with gray.

struct JpegErrors {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_callback(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}
void jpeg_message_callback(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_error_callback(cinfo);  // a warning; levels >= 0 are traces
}
void jpeg_output_callback(j_common_ptr) {}

bool jpeg_setjmp_header(jpeg_decompress_struct* cinfo, JpegErrors* e, FILE* f, int* status) {
  if (setjmp(e->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_stdio_src(cinfo, f);
  *status = jpeg_read_header(cinfo, TRUE);
  return true;
}

// The output grows as rows arrive (at most doubling, from 64 KiB): a baseline file cut short
// allocates the rows it held, not the picture its header declared. (A progressive file's
// coefficients are buffered whole by libjpeg before the first row; the pixel limit bounds them.)
bool jpeg_setjmp_pixels(jpeg_decompress_struct* cinfo, JpegErrors* e, std::vector<uint8_t>* out,
                        std::size_t stride) {
  if (setjmp(e->jump)) return false;
  jpeg_start_decompress(cinfo);
  const std::size_t total = stride * cinfo->output_height;
  while (cinfo->output_scanline < cinfo->output_height) {
    const std::size_t end = static_cast<std::size_t>(cinfo->output_scanline + 1) * stride;
    if (end > out->size()) out->resize(std::min(total, std::max(end, 2 * out->size() + 65536)));
    JSAMPROW row = out->data() + static_cast<std::size_t>(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);  // reads to EOI: a file cut after the last row is refused too
  return true;
}

Raster decode_jpeg(const ImageFile& file, Want want) {
  jpeg_decompress_struct cinfo{};
  JpegErrors e{};
  cinfo.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_error_callback;
  e.mgr.emit_message = jpeg_message_callback;
  e.mgr.output_message = jpeg_output_callback;
  struct Guard {
    jpeg_decompress_struct* c;
    ~Guard() { jpeg_destroy_decompress(c); }  // safe on a struct never created
  } guard{&cinfo};
  const auto failed = [&] {
    const bool eof = e.mgr.msg_code == JWRN_JPEG_EOF;
    file.fail("JPEG", eof ? "truncated: the file ends before the image does (" +
                                std::to_string(file.size()) + " bytes)"
                          : std::string(e.message));
  };
  int status = 0;
  if (!jpeg_setjmp_header(&cinfo, &e, file.get(), &status)) failed();
  if (status != JPEG_HEADER_OK) file.fail("JPEG", "the file holds tables but no image");
  file.check_size("JPEG", cinfo.image_width, cinfo.image_height);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  // Gray from a YCbCr file is its luma channel as stored, as stb_image gave it.
  const bool luma = cinfo.jpeg_color_space == JCS_GRAYSCALE ||
                    (want == Want::Gray && cinfo.jpeg_color_space == JCS_YCbCr);
  cinfo.out_color_space = cmyk ? JCS_CMYK : luma ? JCS_GRAYSCALE : JCS_RGB;
  const int channels = cmyk ? 4 : luma ? 1 : 3;
  std::vector<uint8_t> out;
  if (!jpeg_setjmp_pixels(&cinfo, &e, &out,
                          static_cast<std::size_t>(cinfo.image_width) * channels)) {
    failed();
  }
  if (cinfo.output_width != cinfo.image_width || cinfo.output_components != channels) {
    file.fail("JPEG", "unexpected layout after decoding");
  }
  Raster r{cinfo.image_width, cinfo.image_height, channels == 4 ? 3 : channels, {}};
  if (!cmyk) {
    r.samples = std::move(out);
    return r;
  }
  // Adobe's CMYK, stored inverted (as Photoshop writes it): R = C K / 255, as stb_image did.
  r.samples.resize(static_cast<std::size_t>(r.width * r.height * 3));
  for (std::size_t i = 0; i < r.samples.size() / 3; ++i) {
    const int k = out[4 * i + 3];
    for (int c = 0; c < 3; ++c)
      r.samples[3 * i + c] = static_cast<uint8_t>((out[4 * i + c] * k + 127) / 255);
  }
  return r;
}

// ---- PGM / PPM (binary, P5 / P6) ----------------------------------------------------------
// Netpbm's format: "P5" or "P6", width, height and maxval as decimal numbers separated by
// whitespace (comments from '#' to the end of a line), one whitespace byte, then the samples,
// one byte each when maxval < 256, else two, big-endian. Samples are scaled from [0, maxval] to
// [0, 255].

Raster decode_pnm(const ImageFile& file) {
  FILE* f = file.get();
  char magic[2];
  file.read(magic, 2, "PNM", "header");
  const bool color = magic[1] == '6';
  const std::string format = color ? "PPM" : "PGM";
  const auto number = [&](const char* what) -> int64_t {
    int c = std::fgetc(f);
    while (c == '#' || std::isspace(c)) {
      if (c == '#') {
        while (c != '\n' && c != EOF) c = std::fgetc(f);
      }
      c = std::fgetc(f);
    }
    if (c == EOF) file.fail(format, std::string("truncated: the file ends before the ") + what);
    if (!std::isdigit(c)) file.fail(format, std::string("the ") + what + " is not a number");
    int64_t v = 0;
    for (; c != EOF && std::isdigit(c); c = std::fgetc(f)) {
      v = v * 10 + (c - '0');
      if (v > (int64_t{1} << 31)) file.fail(format, std::string("the ") + what + " is too large");
    }
    if (c == EOF) file.fail(format, "truncated: the file ends in the header");
    if (!std::isspace(c)) file.fail(format, std::string("the ") + what + " is not a number");
    return v;
  };
  const int64_t w = number("width"), h = number("height");
  file.check_size(format, w, h);
  const int64_t maxval = number("maxval");
  if (maxval < 1 || maxval > 65535) {
    file.fail(format, "maxval " + std::to_string(maxval) + " is outside [1, 65535]");
  }
  const int channels = color ? 3 : 1, bytes = maxval < 256 ? 1 : 2;
  const int64_t start = std::ftell(f);
  const int64_t need = w * h * channels * bytes;
  if (start < 0 || file.size() - start < need) {
    file.fail(format, "truncated: the pixel data needs " + std::to_string(need) +
                          " bytes from byte " + std::to_string(start) + ", the file has " +
                          std::to_string(std::max<int64_t>(0, file.size() - start)));
  }
  std::vector<uint8_t> raw(static_cast<std::size_t>(need));
  file.read(raw.data(), raw.size(), format, "pixel data");
  Raster r{w, h, channels, std::vector<uint8_t>(static_cast<std::size_t>(w * h * channels))};
  for (std::size_t i = 0; i < r.samples.size(); ++i) {
    const int64_t v = bytes == 1 ? raw[i] : raw[2 * i] << 8 | raw[2 * i + 1];
    if (v > maxval) {
      file.fail(format, "sample " + std::to_string(i) + " is " + std::to_string(v) +
                            ", above maxval " + std::to_string(maxval));
    }
    r.samples[i] = static_cast<uint8_t>((v * 255 + maxval / 2) / maxval);
  }
  return r;
}

// ---- BMP -----------------------------------------------------------------------------------
// Windows bitmaps with a BITMAPINFOHEADER or a later one (40, 52, 56, 108 or 124 bytes),
// uncompressed: 1, 4 or 8 bits a pixel with a palette, 24 bits (BGR), or 16 or 32 bits with
// BI_RGB's default layout or BI_BITFIELDS masks. RLE, embedded JPEG/PNG and OS/2 headers are
// refused. The pixel data must lie wholly inside the file.

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24; }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// A sample under a mask, scaled to [0, 255].
struct Field {
  uint32_t mask = 0;
  int shift = 0;
  uint32_t max = 0;
  explicit Field(uint32_t m) : mask(m) {
    if (!m) return;
    while (!(m >> shift & 1)) ++shift;
    max = m >> shift;
  }
  uint8_t operator()(uint32_t px) const {
    return static_cast<uint8_t>((uint64_t{(px & mask) >> shift} * 255 + max / 2) / max);
  }
};

Raster decode_bmp(const ImageFile& file) {
  const std::string format = "BMP";
  uint8_t head[14 + 124] = {};
  file.read(head, 18, format, "header");
  const uint32_t data_offset = le32(head + 10), header_size = le32(head + 14);
  if (header_size != 40 && header_size != 52 && header_size != 56 && header_size != 108 &&
      header_size != 124) {
    file.fail(format,
              "unsupported header of " + std::to_string(header_size) + " bytes (OS/2 or unknown)");
  }
  file.read(head + 18, header_size - 4, format, "header");
  const uint8_t* info = head + 14;
  const int64_t w = static_cast<int32_t>(le32(info + 4));
  const int64_t signed_h = static_cast<int32_t>(le32(info + 8));
  const bool top_down = signed_h < 0;
  const int64_t h = top_down ? -signed_h : signed_h;
  file.check_size(format, w, h);
  const int bpp = le16(info + 14);
  const uint32_t compression = le32(info + 16);
  if (le16(info + 12) != 1) file.fail(format, "planes is not 1");
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
    file.fail(format, "unsupported depth of " + std::to_string(bpp) + " bits a pixel");
  }
  const bool bitfields = compression == 3 || compression == 6;  // BI_(ALPHA)BITFIELDS
  if (compression != 0 && !(bitfields && (bpp == 16 || bpp == 32))) {
    file.fail(format, "unsupported compression " + std::to_string(compression) + " at " +
                          std::to_string(bpp) + " bits a pixel (RLE, JPEG or PNG inside BMP)");
  }
  // Masks: in the header from 52 bytes on, else after a 40-byte one.
  uint32_t masks[4] = {0, 0, 0, 0};
  int64_t after_header = 14 + header_size;
  if (bitfields) {
    if (header_size == 40) {
      const int n = compression == 6 ? 4 : 3;
      uint8_t m[16] = {};
      file.read(m, static_cast<std::size_t>(4 * n), format, "colour masks");
      for (int i = 0; i < n; ++i) masks[i] = le32(m + 4 * i);
      after_header += 4 * n;
    } else {
      for (int i = 0; i < 4; ++i)
        masks[i] = header_size >= 56 || i < 3 ? le32(info + 40 + 4 * i) : 0;
    }
    if (!masks[0] || !masks[1] || !masks[2]) file.fail(format, "a colour mask is empty");
  } else if (bpp == 16) {
    masks[0] = 0x7c00, masks[1] = 0x03e0, masks[2] = 0x001f;
  } else if (bpp == 32) {
    masks[0] = 0xff0000, masks[1] = 0xff00, masks[2] = 0xff, masks[3] = 0xff000000u;
  }
  // The palette: between the headers and the pixel data.
  std::vector<uint8_t> palette;  // BGR0 entries
  if (bpp <= 8) {
    const uint32_t used = le32(info + 32);
    const int64_t entries = used ? used : int64_t{1} << bpp;
    if (entries > int64_t{1} << bpp) {
      file.fail(format, std::to_string(entries) + " palette entries at " + std::to_string(bpp) +
                            " bits a pixel");
    }
    if (after_header + 4 * entries > data_offset) {
      file.fail(format, "the palette overlaps the pixel data");
    }
    palette.resize(static_cast<std::size_t>(4 * entries));
    file.read(palette.data(), palette.size(), format, "palette");
  }
  const int64_t stride = (w * bpp + 31) / 32 * 4;
  const int64_t need = stride * h;
  if (data_offset < after_header || data_offset > file.size() || file.size() - data_offset < need) {
    file.fail(format, "truncated: " + std::to_string(w) + " x " + std::to_string(h) +
                          " pixels need " + std::to_string(need) + " bytes from byte " +
                          std::to_string(data_offset) + ", the file has " +
                          std::to_string(file.size()) + " bytes");
  }
  const bool alpha = masks[3] != 0;
  Raster r{w, h, alpha ? 4 : 3,
           std::vector<uint8_t>(static_cast<std::size_t>(w * h * (alpha ? 4 : 3)))};
  const Field fields[4] = {Field(masks[0]), Field(masks[1]), Field(masks[2]), Field(masks[3])};
  std::vector<uint8_t> row(static_cast<std::size_t>(stride));
  if (std::fseek(file.get(), data_offset, SEEK_SET) != 0) file.fail(format, "cannot seek");
  bool any_alpha = false;
  for (int64_t y = 0; y < h; ++y) {
    file.read(row.data(), row.size(), format, "pixel data");
    uint8_t* out =
        &r.samples[static_cast<std::size_t>((top_down ? y : h - 1 - y) * w * r.channels)];
    for (int64_t x = 0; x < w; ++x, out += r.channels) {
      if (bpp <= 8) {
        const int per_byte = 8 / bpp;
        const int shift = 8 - bpp * (1 + static_cast<int>(x % per_byte));
        const std::size_t index = row[x / per_byte] >> shift & ((1u << bpp) - 1);
        if (4 * index >= palette.size()) {
          file.fail(format, "pixel (" + std::to_string(x) + ", " + std::to_string(y) +
                                ") uses colour " + std::to_string(index) + " of a palette of " +
                                std::to_string(palette.size() / 4));
        }
        out[0] = palette[4 * index + 2], out[1] = palette[4 * index + 1],
        out[2] = palette[4 * index];
      } else if (bpp == 24) {
        out[0] = row[3 * x + 2], out[1] = row[3 * x + 1], out[2] = row[3 * x];
      } else {
        const uint32_t px = bpp == 16 ? le16(&row[2 * x]) : le32(&row[4 * x]);
        for (int c = 0; c < r.channels; ++c) out[c] = fields[c](px);
        any_alpha = any_alpha || (alpha && out[3] != 0);
      }
    }
  }
  // Many writers leave the fourth byte of 32-bit BI_RGB pixels zero: all-zero alpha is no alpha
  // (stb_image's rule), else those pictures would be wholly transparent.
  if (alpha && !any_alpha) {
    for (std::size_t i = 3; i < r.samples.size(); i += 4) r.samples[i] = 255;
  }
  return r;
}

Raster decode(const std::string& path, Want want) {
  const ImageFile file(path);
  uint8_t magic[8] = {};
  const std::size_t n = std::fread(magic, 1, sizeof magic, file.get());
  std::rewind(file.get());
  const auto starts = [&](std::initializer_list<uint8_t> sig) {
    return n >= sig.size() && std::equal(sig.begin(), sig.end(), magic);
  };
  if (starts({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) return decode_png(file);
  if (starts({0xff, 0xd8, 0xff})) return decode_jpeg(file, want);
  if (starts({'B', 'M'})) return decode_bmp(file);
  if (starts({'P', '5'}) || starts({'P', '6'})) return decode_pnm(file);
  throw Error(path + ": cannot read image: not a PNG, JPEG, BMP or binary PGM/PPM file");
}

// stb_image's luma, so that gray pictures come out as before: (77 R + 150 G + 29 B) / 256.
uint8_t luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
}

}  // namespace

GrayImage read_gray_image(const std::string& path) {
  // Gray and alpha: a digit drawn on a transparent canvas has its background's colour only in
  // alpha (often black at alpha 0), so gray alone would read it as a blank page. Composited onto
  // white paper instead, as an image viewer shows it; opaque pixels keep their value exactly.
  const Raster r = decode(path, Want::Gray);
  GrayImage g;
  g.width = r.width;
  g.height = r.height;
  g.pixels.resize(static_cast<std::size_t>(r.width * r.height));
  const int c = r.channels;
  for (std::size_t i = 0; i < g.pixels.size(); ++i) {
    const uint8_t* p = &r.samples[i * c];
    const int v = c >= 3 ? luma(p) : p[0];
    const int a = c == 2 ? p[1] : c == 4 ? p[3] : 255;
    g.pixels[i] = static_cast<uint8_t>((a * v + (255 - a) * 255 + 127) / 255);
  }
  return g;
}

RgbImage read_rgb_image(const std::string& path) {
  const Raster r = decode(path, Want::Rgb);
  RgbImage img;
  img.width = r.width;
  img.height = r.height;
  img.rgb.resize(static_cast<std::size_t>(r.width * r.height * 3));
  const int c = r.channels;
  for (std::size_t i = 0; i < img.rgb.size() / 3; ++i) {
    const uint8_t* p = &r.samples[i * c];
    for (int k = 0; k < 3; ++k) img.rgb[3 * i + k] = c >= 3 ? p[k] : p[0];  // alpha dropped
  }
  return img;
}

void write_png(const std::string& path, const RgbImage& image) {
  std::string bytes;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, static_cast<int>(image.width),
                              static_cast<int>(image.height), 3, image.rgb.data(),
                              static_cast<int>(image.width * 3))) {
    throw Error(path + ": cannot encode PNG");
  }
  write_file_atomically(path, bytes);
}

std::array<uint8_t, 3> colormap(Colormap map, float t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0f, 0.0f, 1.0f);
  const int i = static_cast<int>(t * 255.0f + 0.5f);
  if (map == Colormap::Gray) {
    const auto v = static_cast<uint8_t>(i);
    return {v, v, v};
  }
  return {kViridis[i][0], kViridis[i][1], kViridis[i][2]};
}

int64_t text_width(const std::string& text, int64_t scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

void draw_text(RgbImage& image, int64_t x, int64_t y, const std::string& text, int64_t scale,
               std::array<uint8_t, 3> color) {
  // stb_easy_font emits axis-aligned quads: 4 vertices of (x, y, z, rgba) each.
  struct Vertex {
    float x, y, z;
    unsigned char c[4];
  };
  std::vector<Vertex> buf(text.size() * 270 + 64);
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buf.data(),
                                        static_cast<int>(buf.size() * sizeof(Vertex)));
  for (int q = 0; q < quads; ++q) {
    const Vertex* v = &buf[static_cast<std::size_t>(q) * 4];
    const auto x0 = static_cast<int64_t>(v[0].x), y0 = static_cast<int64_t>(v[0].y);
    const auto x1 = static_cast<int64_t>(v[2].x), y1 = static_cast<int64_t>(v[2].y);
    for (int64_t py = y0 * scale; py < y1 * scale; ++py) {
      for (int64_t px = x0 * scale; px < x1 * scale; ++px) image.set(x + px, y + py, color);
    }
  }
}

RgbImage render_grid(const Tensor& maps, int64_t grid_rows, int64_t grid_cols, Colormap map,
                     int64_t scale, const std::string& title) {
  if (maps.dim() != 3) {
    throw Error("render_grid: expected maps of shape (C, H, W), got " + shape_str(maps.shape()));
  }
  const int64_t C = maps.size(0), H = maps.size(1), W = maps.size(2);
  if (C > grid_rows * grid_cols) {
    throw Error("render_grid: " + std::to_string(C) + " maps do not fit a " +
                std::to_string(grid_rows) + "x" + std::to_string(grid_cols) + " grid");
  }
  const int64_t gap = 4, margin = 8, text_scale = 2,
                title_h = title.empty() ? 0 : 12 * text_scale + 8;
  const int64_t cell_w = W * scale, cell_h = H * scale;
  const int64_t width = std::max(2 * margin + grid_cols * cell_w + (grid_cols - 1) * gap,
                                 2 * margin + text_width(title, text_scale));
  const int64_t height = 2 * margin + title_h + grid_rows * cell_h + (grid_rows - 1) * gap;
  RgbImage img(width, height);
  if (!title.empty()) draw_text(img, margin, margin, title, text_scale);
  const int64_t left = (width - (grid_cols * cell_w + (grid_cols - 1) * gap)) / 2;
  for (int64_t c = 0; c < C; ++c) {
    const float* m = maps.data() + c * H * W;
    const auto [lo, hi] = std::minmax_element(m, m + H * W);
    const float range = *hi - *lo;
    const int64_t ox = left + (c % grid_cols) * (cell_w + gap);
    const int64_t oy = margin + title_h + (c / grid_cols) * (cell_h + gap);
    // A thin frame, so that white cells stay distinct from the white background.
    for (int64_t x = -1; x <= cell_w; ++x) {
      img.set(ox + x, oy - 1, {150, 150, 150});
      img.set(ox + x, oy + cell_h, {150, 150, 150});
    }
    for (int64_t y = -1; y <= cell_h; ++y) {
      img.set(ox - 1, oy + y, {150, 150, 150});
      img.set(ox + cell_w, oy + y, {150, 150, 150});
    }
    for (int64_t y = 0; y < cell_h; ++y) {
      for (int64_t x = 0; x < cell_w; ++x) {
        const float v = m[(y / scale) * W + x / scale];
        img.set(ox + x, oy + y, colormap(map, range > 0 ? (v - *lo) / range : 0.0f));
      }
    }
  }
  return img;
}

}  // namespace cnn
