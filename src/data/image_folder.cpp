#include "cnn/data/image_folder.h"

#include <stb_image_resize.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "cnn/error.h"
#include "cnn/limits.h"
#include "cnn/viz/image.h"

namespace cnn {

namespace fs = std::filesystem;

namespace {

// Bumped whenever the cache's layout or the meaning of its pixels changes (a new resizer, another
// luma), so that an older cache is rebuilt rather than misread.
constexpr uint32_t kCacheVersion = 1;
constexpr char kCacheMagic[8] = {'C', 'N', 'N', 'F', 'O', 'L', 'D', 'R'};

bool hidden(const fs::path& p) { return p.filename().string().starts_with('.'); }

bool image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".pgm" ||
         ext == ".ppm";
}

// Sub-folders of dir that are not hidden, sorted by name (byte order: std::string compares as
// unsigned char, as Python compares UTF-8 names by code point).
std::vector<std::string> sub_folders(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
  std::vector<std::string> names;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    if (!hidden(it->path()) && it->is_directory(ec)) names.push_back(it->path().filename());
  }
  if (ec) throw Error(dir.string() + ": cannot list the folder (" + ec.message() + ")");
  std::sort(names.begin(), names.end());
  return names;
}

// One image file of the folder.
struct Entry {
  std::string folder;  // its folder under the class folder, "" for the class folder itself
  std::string name;    // its file name
  std::string rel;     // its path under DIR: class/folder/name
  int64_t label = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// The images under one class folder, in torchvision's order (sorted(os.walk(...)) then
// sorted(fnames)): by folder path, then by file name.
void list_class(const fs::path& class_dir, const std::string& class_name, int64_t label,
                std::vector<Entry>& out) {
  const std::size_t first = out.size();
  std::error_code ec;
  fs::recursive_directory_iterator it(class_dir, ec), end;
  const auto fail = [&] {
    throw Error(class_dir.string() + ": cannot list the class folder (" + ec.message() + ")");
  };
  if (ec) fail();
  for (; it != end; it.increment(ec)) {
    if (ec) fail();
    const fs::path& p = it->path();
    if (hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!image_extension(p) || !it->is_regular_file(ec)) continue;
    if (out.size() >= static_cast<std::size_t>(limits::kMaxFolderImages)) {
      throw Error(class_dir.parent_path().string() + ": more than " +
                  std::to_string(limits::kMaxFolderImages) +
                  " image files (cnn::limits::kMaxFolderImages); is it the right folder?");
    }
    Entry e;
    e.folder = p.parent_path().lexically_relative(class_dir).generic_string();
    if (e.folder == ".") e.folder.clear();
    e.name = p.filename();
    e.rel = (fs::path(class_name) / p.lexically_relative(class_dir)).generic_string();
    e.label = label;
    out.push_back(std::move(e));
  }
  if (ec) fail();
  if (out.size() == first) {
    throw Error(class_dir.string() +
                ": the class folder holds no image files (*.png, *.jpg, *.jpeg, *.bmp, *.pgm, "
                "*.ppm)");
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const Entry& a, const Entry& b) {
              return a.folder != b.folder ? a.folder < b.folder : a.name < b.name;
            });
}

// ---- hashing and the cache file's bytes ------------------------------------------------------

// FNV-1a, 64 bits: the manifest's hash and the cache's name. It detects changed files, not an
// adversary; a cache file is read with every size checked whatever its hash says.
struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  }
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    bytes(b, 8);
  }
  // Length first, so that ("ab", "c") and ("a", "bc") differ.
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

void hash_options(Fnv& f, const ImageFolderOptions& o, const std::vector<std::string>& classes) {
  f.u64(kCacheVersion);
  f.u64(static_cast<uint64_t>(o.channels));
  f.u64(static_cast<uint64_t>(o.rows));
  f.u64(static_cast<uint64_t>(o.cols));
  f.u64(o.skip_bad);
  f.u64(classes.size());
  for (const auto& c : classes) f.str(c);
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>(v >> (8 * i));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24;
}
uint64_t get_u64(const unsigned char* p) { return get_u32(p) | uint64_t{get_u32(p + 4)} << 32; }

uint32_t crc_update(uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {  // zlib takes uInt lengths
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

// The cache file, little-endian:
//   char[8] "CNNFOLDR", u32 version, u32 0,
//   u64 manifest hash, u64 count, u64 channels, u64 rows, u64 cols, u64 skipped, u64 skip bytes,
//   u8 labels[count], u8 pixels[count * channels * rows * cols],
//   skip bytes: per skipped file, u32 length + its path under DIR, u32 length + the reason,
//   u32 CRC-32 (zlib) of every byte before it.
constexpr std::size_t kHeaderBytes = 8 + 4 + 4 + 7 * 8;
// Bytes of the skipped files' records: each path and reason is at most 64 KiB, far above any
// path the system allows and any decoder's message.
constexpr uint32_t kMaxSkipText = 1u << 16;

struct Skip {
  std::string rel, reason;
};

// Reads a cache file into data, skips; false (data untouched) when it is missing, of another
// version or manifest, inconsistent, truncated or fails its CRC. Every size is checked against
// the expected values and the file's size before anything is allocated.
bool read_cache(const fs::path& path, uint64_t manifest, int64_t images,
                const ImageFolderOptions& o, int64_t num_classes, Dataset& data,
                std::vector<Skip>& skips) {
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec || file_size < kHeaderBytes + 4) return false;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) return false;
  unsigned char h[kHeaderBytes];
  if (std::fread(h, 1, sizeof h, f.get()) != sizeof h) return false;
  if (std::memcmp(h, kCacheMagic, 8) != 0 || get_u32(h + 8) != kCacheVersion ||
      get_u32(h + 12) != 0 || get_u64(h + 16) != manifest) {
    return false;
  }
  const uint64_t count = get_u64(h + 24), channels = get_u64(h + 32), rows = get_u64(h + 40),
                 cols = get_u64(h + 48), skipped = get_u64(h + 56), skip_bytes = get_u64(h + 64);
  if (count == 0 || skipped > static_cast<uint64_t>(images) ||
      count != static_cast<uint64_t>(images) - skipped) {
    return false;
  }
  if (o.channels ? channels != static_cast<uint64_t>(o.channels) : channels != 1 && channels != 3) {
    return false;
  }
  if (o.rows ? rows != static_cast<uint64_t>(o.rows) || cols != static_cast<uint64_t>(o.cols)
             : rows == 0 || cols == 0 || rows > static_cast<uint64_t>(limits::kMaxImagePixels) ||
                   cols > static_cast<uint64_t>(limits::kMaxImagePixels) / rows) {
    return false;
  }
  // count <= 2^24, channels <= 3, rows * cols <= 2^26: no product below wraps.
  const uint64_t pixel_bytes = count * channels * rows * cols;
  if (pixel_bytes > limits::kMaxFolderBytes) return false;
  if (skip_bytes > skipped * 2 * (4 + uint64_t{kMaxSkipText})) return false;
  if (file_size != kHeaderBytes + count + pixel_bytes + skip_bytes + 4) return false;

  Dataset d;
  d.count = static_cast<int64_t>(count);
  d.channels = static_cast<int64_t>(channels);
  d.rows = static_cast<int64_t>(rows);
  d.cols = static_cast<int64_t>(cols);
  d.labels.resize(count);
  d.pixels.resize(pixel_bytes);
  std::string skip_raw(skip_bytes, '\0');
  if (std::fread(d.labels.data(), 1, count, f.get()) != count ||
      std::fread(d.pixels.data(), 1, pixel_bytes, f.get()) != pixel_bytes ||
      std::fread(skip_raw.data(), 1, skip_bytes, f.get()) != skip_bytes) {
    return false;
  }
  unsigned char stored[4];
  if (std::fread(stored, 1, 4, f.get()) != 4) return false;
  uint32_t crc = crc_update(0, h, sizeof h);
  crc = crc_update(crc, d.labels.data(), count);
  crc = crc_update(crc, d.pixels.data(), pixel_bytes);
  crc = crc_update(crc, skip_raw.data(), skip_raw.size());
  if (crc != get_u32(stored)) return false;
  if (std::any_of(d.labels.begin(), d.labels.end(), [&](uint8_t l) { return l >= num_classes; })) {
    return false;
  }
  std::vector<Skip> s;
  std::size_t pos = 0;
  const auto text = [&](std::string& out) {
    if (skip_raw.size() - pos < 4) return false;
    const uint32_t n = get_u32(reinterpret_cast<const unsigned char*>(skip_raw.data() + pos));
    pos += 4;
    if (n > kMaxSkipText || skip_raw.size() - pos < n) return false;
    out = skip_raw.substr(pos, n);
    pos += n;
    return true;
  };
  for (uint64_t i = 0; i < skipped; ++i) {
    Skip k;
    if (!text(k.rel) || !text(k.reason)) return false;
    s.push_back(std::move(k));
  }
  if (pos != skip_raw.size()) return false;
  data = std::move(d);
  skips = std::move(s);
  return true;
}

// Writes the cache to a temporary file renamed over path, so that a reader never sees half a
// file. Not flushed to the disk (fsync): a cache lost or cut by a power cut fails its size or CRC
// check and is rebuilt.
void write_cache(const fs::path& path, uint64_t manifest, const Dataset& d,
                 const std::vector<Skip>& skips) {
  std::string skip_raw;
  for (const auto& k : skips) {
    for (const std::string* t : {&k.rel, &k.reason}) {
      const std::string s = t->substr(0, kMaxSkipText);
      put_u32(skip_raw, static_cast<uint32_t>(s.size()));
      skip_raw += s;
    }
  }
  std::string h(kCacheMagic, 8);
  put_u32(h, kCacheVersion);
  put_u32(h, 0);
  put_u64(h, manifest);
  for (int64_t v : {d.count, d.channels, d.rows, d.cols, static_cast<int64_t>(skips.size()),
                    static_cast<int64_t>(skip_raw.size())}) {
    put_u64(h, static_cast<uint64_t>(v));
  }
  uint32_t crc = crc_update(0, h.data(), h.size());
  crc = crc_update(crc, d.labels.data(), d.labels.size());
  crc = crc_update(crc, d.pixels.data(), d.pixels.size());
  crc = crc_update(crc, skip_raw.data(), skip_raw.size());
  std::string tail;
  put_u32(tail, crc);

  // A name of its own per process, so that two processes filling the same cache do not write
  // into one temporary file.
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), std::fclose);
  const auto fail = [&](const std::string& why) {
    f.reset();
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(path.string() + ": cannot write the image folder's cache (" + why + ")");
  };
  if (!f) fail(std::strerror(errno));
  const auto put = [&](const void* p, std::size_t n) {
    if (std::fwrite(p, 1, n, f.get()) != n) fail(std::strerror(errno));
  };
  put(h.data(), h.size());
  put(d.labels.data(), d.labels.size());
  put(d.pixels.data(), d.pixels.size());
  put(skip_raw.data(), skip_raw.size());
  put(tail.data(), tail.size());
  if (std::fclose(f.release()) != 0) fail(std::strerror(errno));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fail(ec.message());
}

// ---- decoding --------------------------------------------------------------------------------

// One image as RGB, resized to the target size when it has one and differs.
struct Decoded {
  bool ok = false;
  std::string error;  // the decoder's message, when !ok
  bool colour = false;
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (H, W, 3)
};

Decoded decode(const std::string& path, int64_t rows, int64_t cols) {
  Decoded d;
  RgbImage img;
  try {
    img = read_rgb_image(path);
  } catch (const Error& e) {
    d.error = e.what();
    return d;
  }
  d.ok = true;
  for (std::size_t i = 0; i < img.rgb.size() && !d.colour; i += 3) {
    d.colour = img.rgb[i] != img.rgb[i + 1] || img.rgb[i] != img.rgb[i + 2];
  }
  if (rows == 0 || (img.height == rows && img.width == cols)) {
    d.width = img.width;
    d.height = img.height;
    d.rgb = std::move(img.rgb);
    return d;
  }
  // stb's default filters (Catmull-Rom enlarging, Mitchell shrinking) on each channel alone, so a
  // gray picture stays gray. Sizes are at most 2^26 pixels (the decoder's limit and the option's),
  // inside stb's int.
  d.width = cols;
  d.height = rows;
  d.rgb.resize(static_cast<std::size_t>(rows * cols * 3));
  if (!stbir_resize_uint8(img.rgb.data(), static_cast<int>(img.width), static_cast<int>(img.height),
                          0, d.rgb.data(), static_cast<int>(cols), static_cast<int>(rows), 0, 3)) {
    throw Error(path + ": cannot resize the image from " + std::to_string(img.height) + " x " +
                std::to_string(img.width) + " to " + std::to_string(rows) + " x " +
                std::to_string(cols));
  }
  return d;
}

// ITU-R 601-2 luma as PIL's convert("L") computes it (libImaging/Convert.c, L24):
// (19595 R + 38470 G + 7471 B + 2^15) >> 16, the weights 0.299, 0.587, 0.114 in 16-bit fixed
// point, rounded. The weights sum to 2^16, so a gray pixel keeps its value.
uint8_t luma601(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

// (H, W, 3) RGB to (C, H, W) planes of `channels` (1 or 3).
void to_planes(const std::vector<uint8_t>& rgb, int64_t channels, uint8_t* out) {
  const std::size_t hw = rgb.size() / 3;
  for (std::size_t i = 0; i < hw; ++i) {
    if (channels == 1) {
      out[i] = luma601(&rgb[3 * i]);
    } else {
      for (int c = 0; c < 3; ++c) out[c * hw + i] = rgb[3 * i + c];
    }
  }
}

void check_bytes(const std::string& dir, int64_t images, int64_t channels, int64_t rows,
                 int64_t cols) {
  const uint64_t bytes = static_cast<uint64_t>(images * channels * rows * cols);
  if (bytes > limits::kMaxFolderBytes) {
    throw Error(dir + ": " + std::to_string(images) + " images of " + std::to_string(channels) +
                " x " + std::to_string(rows) + " x " + std::to_string(cols) + " need " +
                std::to_string(bytes) + " bytes, more than the limit of " +
                std::to_string(limits::kMaxFolderBytes) +
                " (cnn::limits::kMaxFolderBytes); resize them smaller (rows, cols)");
  }
}

std::string dataset_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename();
  if ((name == "train" || name == "test" || name == "val") && !p.parent_path().filename().empty()) {
    return p.parent_path().filename();
  }
  return name;
}

void check_options(const std::string& dir, const ImageFolderOptions& o) {
  const auto bad = [&](const std::string& why) { throw Error(dir + ": " + why); };
  if (o.channels != 0 && o.channels != 1 && o.channels != 3) {
    bad("channels is " + std::to_string(o.channels) + " (expected 1, 3, or 0 for the images' own)");
  }
  if (o.rows < 0 || o.cols < 0 || (o.rows == 0) != (o.cols == 0)) {
    bad("the size is " + std::to_string(o.rows) + " x " + std::to_string(o.cols) +
        " (expected rows and cols both positive, or both 0 for the first image's size)");
  }
  if (o.rows > 0 && o.cols > limits::kMaxImagePixels / o.rows) {
    bad("the size " + std::to_string(o.rows) + " x " + std::to_string(o.cols) +
        " is more than the limit of " + std::to_string(limits::kMaxImagePixels) + " pixels");
  }
  if (static_cast<int64_t>(o.class_names.size()) > limits::kMaxFolderClasses) {
    bad(std::to_string(o.class_names.size()) + " class names given, more than the " +
        std::to_string(limits::kMaxFolderClasses) + " a dataset's uint8 labels can hold");
  }
  std::vector<std::string> sorted = o.class_names;
  std::sort(sorted.begin(), sorted.end());
  if (const auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    bad("the class '" + excerpt(*dup) + "' is given twice");
  }
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o,
                          ImageFolderReport* report) {
  ImageFolderReport local;
  ImageFolderReport& r = report ? *report : local;
  r = ImageFolderReport{};
  check_options(dir, o);
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw Error(dir + (fs::exists(root, ec) ? ": not a folder" : ": image folder not found"));
  }

  // The classes and their files.
  const std::vector<std::string> folders = sub_folders(root);
  if (folders.empty()) {
    throw Error(dir + ": no class folders (expected " + dir +
                "/<class>/<image files>, as torchvision's ImageFolder)");
  }
  std::vector<std::string> classes = o.class_names.empty() ? folders : o.class_names;
  if (static_cast<int64_t>(classes.size()) > limits::kMaxFolderClasses) {
    throw Error(dir + ": " + std::to_string(classes.size()) + " class folders, more than the " +
                std::to_string(limits::kMaxFolderClasses) + " a dataset's uint8 labels can hold");
  }
  std::vector<Entry> entries;
  for (const auto& folder : folders) {
    const auto it = std::find(classes.begin(), classes.end(), folder);
    if (it == classes.end()) {
      throw Error((root / folder).string() + ": the folder '" + excerpt(folder) +
                  "' is not one of the " + std::to_string(classes.size()) +
                  " classes given (the training split's?)");
    }
    list_class(root / folder, folder, it - classes.begin(), entries);
  }
  const auto images = static_cast<int64_t>(entries.size());

  // The manifest: what the pixels are made from.
  Fnv manifest;
  hash_options(manifest, o, classes);
  manifest.u64(entries.size());
  for (auto& e : entries) {
    const fs::path p = root / e.rel;
    e.size = fs::file_size(p, ec);
    if (!ec) {
      e.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       fs::last_write_time(p, ec).time_since_epoch())
                       .count();
    }
    if (ec)
      throw Error(p.string() + ": cannot read the file's size and time (" + ec.message() + ")");
    manifest.str(e.rel);
    manifest.u64(static_cast<uint64_t>(e.label));
    manifest.u64(e.size);
    manifest.u64(static_cast<uint64_t>(e.mtime_ns));
  }

  Dataset data;
  std::vector<Skip> skips;
  fs::path cache;
  bool cached = false;
  if (!o.cache_dir.empty()) {
    Fnv name;
    name.str(fs::absolute(root).lexically_normal().generic_string());
    hash_options(name, o, classes);
    char file[64];
    std::snprintf(file, sizeof file, "image-folder-%016llx.cache",
                  static_cast<unsigned long long>(name.h));
    cache = fs::path(o.cache_dir) / file;
    r.cache_file = cache.string();
    cached =
        read_cache(cache, manifest.h, images, o, static_cast<int64_t>(classes.size()), data, skips);
    // The skipped files must be the folder's, in its order: then the others are the dataset's.
    std::size_t s = 0;
    for (const auto& e : entries) {
      if (!cached) break;
      if (s < skips.size() && skips[s].rel == e.rel) {
        ++s;
      } else {
        r.files.push_back(e.rel);
      }
    }
    if (cached && s != skips.size()) {
      cached = false;
      skips.clear();
      r.files.clear();
    }
    r.from_cache = cached;
  }

  if (!cached) {
    data = Dataset{};
    data.channels = o.channels ? o.channels : 1;  // auto: gray until a colour image comes
    data.rows = o.rows;
    data.cols = o.cols;
    if (data.rows) check_bytes(dir, images, o.channels ? o.channels : 3, data.rows, data.cols);
    int64_t plane = data.rows * data.cols;
    const auto commit = [&](const Entry& e, Decoded& d) {
      if (!d.ok) {
        if (!o.skip_bad) throw Error(d.error);
        skips.push_back({e.rel, d.error});
        return;
      }
      ++r.decoded;
      if (data.rows == 0) {  // the first image sets the size
        data.rows = d.height;
        data.cols = d.width;
        plane = data.rows * data.cols;
        check_bytes(dir, images, o.channels ? o.channels : 3, data.rows, data.cols);
      }
      if (data.pixels.empty()) {
        data.pixels.resize(static_cast<std::size_t>(images * data.channels * plane));
      }
      if (o.channels == 0 && data.channels == 1 && d.colour) {
        // The first colour image: the gray ones so far become RGB, each plane replicated (exactly
        // what RGB decoding of a gray picture gives).
        std::vector<uint8_t> rgb(static_cast<std::size_t>(images * 3 * plane));
        for (int64_t i = 0; i < data.count; ++i) {
          for (int c = 0; c < 3; ++c) {
            std::copy_n(&data.pixels[i * plane], plane, &rgb[(i * 3 + c) * plane]);
          }
        }
        data.pixels = std::move(rgb);
        data.channels = 3;
      }
      to_planes(d.rgb, data.channels, &data.pixels[data.count * data.channels * plane]);
      data.labels.push_back(static_cast<uint8_t>(e.label));
      r.files.push_back(e.rel);
      ++data.count;
    };
    // Until the size is known, one image at a time; then chunks decoded in parallel and committed
    // in order, so that the first bad file reported is the first in the dataset's order.
    std::size_t next = 0;
    for (; next < entries.size() && data.rows == 0; ++next) {
      Decoded d = decode((root / entries[next].rel).string(), 0, 0);
      commit(entries[next], d);
    }
    const std::size_t chunk = 256;
    std::vector<Decoded> decoded;
    for (; next < entries.size(); next += chunk) {
      const std::size_t n = std::min(chunk, entries.size() - next);
      decoded.assign(n, Decoded{});
      std::exception_ptr failure;
      const int64_t rows = data.rows, cols = data.cols;
#pragma omp parallel for schedule(dynamic)
      for (std::size_t i = 0; i < n; ++i) {
        try {
          decoded[i] = decode((root / entries[next + i].rel).string(), rows, cols);
        } catch (...) {  // out of memory, a resize that failed: rethrown below
#pragma omp critical
          if (!failure) failure = std::current_exception();
        }
      }
      if (failure) std::rethrow_exception(failure);
      for (std::size_t i = 0; i < n; ++i) commit(entries[next + i], decoded[i]);
    }
    if (data.count == 0) {
      throw Error(dir + ": none of its " + std::to_string(images) + " images could be read (" +
                  skips.front().reason + ")");
    }
    data.pixels.resize(static_cast<std::size_t>(data.count * data.channels * plane));
    if (!cache.empty()) {
      fs::create_directories(o.cache_dir, ec);
      if (ec) {
        throw Error(o.cache_dir + ": cannot make the cache folder (" + ec.message() + ")");
      }
      write_cache(cache, manifest.h, data, skips);
    }
  }

  data.name = dataset_name(root);
  data.split = o.split;
  data.num_classes = static_cast<int64_t>(classes.size());
  data.class_names = std::move(classes);
  r.images = images;
  r.skipped = static_cast<int64_t>(skips.size());
  for (auto& k : skips) {
    r.skipped_files.push_back(std::move(k.rel));
    r.skip_reasons.push_back(std::move(k.reason));
  }
  return data;
}

std::vector<uint8_t> read_image_as(const std::string& path, int64_t channels, int64_t rows,
                                   int64_t cols) {
  if ((channels != 1 && channels != 3) || rows <= 0 || cols <= 0 ||
      rows * cols > limits::kMaxImagePixels) {
    throw Error(path + ": cannot make an image of " + std::to_string(channels) + " x " +
                std::to_string(rows) + " x " + std::to_string(cols));
  }
  Decoded d = decode(path, rows, cols);
  if (!d.ok) throw Error(d.error);
  std::vector<uint8_t> planes(static_cast<std::size_t>(channels * rows * cols));
  to_planes(d.rgb, channels, planes.data());
  return planes;
}

std::vector<std::string> list_images(const std::string& path) {
  if (!fs::is_directory(path)) return {path};
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && image_extension(it->path())) files.push_back(it->path().string());
  }
  if (ec) throw Error(path + ": cannot list the folder (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  return files;
}

FolderSplits find_folder_splits(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw Error(dir + (fs::exists(root, ec) ? ": not a folder" : ": image folder not found"));
  }
  const auto is_dir = [&](const char* name) { return fs::is_directory(root / name, ec); };
  const bool train = is_dir("train");
  const char* test = is_dir("test") ? "test" : is_dir("val") ? "val" : nullptr;
  if (train && test) return {(root / "train").string(), (root / test).string()};
  if (train || test) {
    const std::string has =
        train ? "train/ but no test/ or val/" : std::string(test) + "/ but no train/";
    throw Error(dir + ": holds " + has + " (expected both, or class folders only)");
  }
  if (sub_folders(root).empty()) {
    throw Error(dir + ": no class folders and no train/ and test/ folders (expected " + dir +
                "/<class>/<image files>, or train/ and test/ each laid out so)");
  }
  return {dir, ""};
}

}  // namespace cnn
