// Image classification datasets laid out as torchvision's ImageFolder, DIR/<class>/<images>,
// decoded into a cnn::Dataset, and kept decoded in a cache file that later loads reuse until an
// image file changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnn/data/dataset.h"

namespace cnn {

struct ImageFolderOptions {
  // Channels of every image: 1 (gray: ITU-R 601-2 luma, as PIL's convert("L")) or 3 (RGB: gray
  // replicated, alpha dropped, as PIL's convert("RGB")); 0: 3 if any image holds a pixel whose
  // R, G and B differ, else 1. (A gray picture saved as RGB is gray: its pixels are what count.)
  int64_t channels = 0;
  // The size every image is resized to (stb's resizer, as RGB, before any conversion to gray)
  // when it differs; both 0: the first image's size. Both set or both 0; rows x cols at most
  // cnn::limits::kMaxImagePixels.
  int64_t rows = 0, cols = 0;
  // false: a corrupt or unreadable image is a cnn::Error naming the file. true: it is skipped,
  // and counted and named in the report.
  bool skip_bad = false;
  // A folder for the cache file (made when missing); empty: no cache.
  std::string cache_dir;
  // Non-empty: these classes, in this order (the training split's, for its test split): a class
  // folder not among them is an error naming it; a class without a folder has no images.
  // Empty: the class folders' names, sorted. At most cnn::limits::kMaxFolderClasses either way.
  std::vector<std::string> class_names;
  // Dataset::split of the result ("train", "test"); nothing else depends on it.
  std::string split = "train";
};

struct ImageFolderReport {
  int64_t images = 0;   // image files found: the dataset's count + skipped
  int64_t decoded = 0;  // images decoded by this call: 0 when the cache was used
  int64_t skipped = 0;  // bad images left out (with skip_bad)
  bool from_cache = false;
  std::vector<std::string> files;          // the dataset's images in its order, paths under DIR
  std::vector<std::string> skipped_files;  // paths of the bad images, under DIR
  std::vector<std::string> skip_reasons;   // why each was bad: the decoder's error
  std::string cache_file;                  // the cache's path; empty without cache_dir
};

// Loads DIR/<class>/... into a Dataset of images (C, H, W) = (channels, rows, cols), uint8, and
// labels = the class's position in class_names.
//
// The folder, as torchvision's ImageFolder reads it: the classes are DIR's sub-folders, sorted by
// name (byte order); each class's images are the files under its folder, sub-folders included,
// named *.png, *.jpg, *.jpeg, *.bmp, *.pgm or *.ppm (any case), in torchvision's order: by
// folder path, then by file name. Other files, and files and folders whose names start with '.',
// are ignored; links to folders inside a class folder are not followed (a link loop would never
// end). Dataset::name is DIR's name, or its parent's when DIR is named train, test or val.
//
// Errors (cnn::Error, naming the path): DIR missing or holding no class folder; a class folder
// without images; more than kMaxFolderClasses classes or kMaxFolderImages images; pixels over
// kMaxFolderBytes (checked before they are allocated); a bad image unless skip_bad; no image
// left after skipping; a cache file that cannot be written.
//
// The cache (cache_dir set): one file per folder and options, named by a hash of DIR's absolute
// path and the options, holding the decoded pixels and labels, the skipped files, a hash of the
// manifest (every image's path, size and modification time in nanoseconds, the options, the
// class list, the format's version) and a CRC-32. A load whose manifest hashes the same uses it
// without opening any image; any other cache file (changed images, corrupt, truncated, of
// another version) is ignored and replaced. An image rewritten with the same size within the
// same mtime tick is not seen as changed (as make would not see it).
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options = {},
                          ImageFolderReport* report = nullptr);

// One picture file made as load_image_folder makes each image: `channels` (1: PIL's luma; 3: RGB)
// and resized to rows x cols; (C, H, W) uint8 planes. Throws naming the file when it cannot be
// read or decoded.
std::vector<uint8_t> read_image_as(const std::string& path, int64_t channels, int64_t rows,
                                   int64_t cols);

// The picture files under path (itself when it is a file), as an image folder lists them: by
// extension (.png .jpg .jpeg .bmp .pgm .ppm, any case), hidden ones left out, sorted.
std::vector<std::string> list_images(const std::string& path);

struct FolderSplits {
  std::string train, test;  // test empty: DIR holds one split, which the caller divides
};

// DIR/train and DIR/test (or DIR/val, as ImageNet names it) when DIR holds both; else DIR itself
// as the training split when it holds class folders. Errors name DIR: missing, holding no
// folder, or holding train without test or val (or the reverse).
FolderSplits find_folder_splits(const std::string& dir);

}  // namespace cnn
