// The limits on what a file, a request or a tensor may declare, stated in one place. A file says
// how big it is before it says anything else (an IDX header, an archive's tensor shapes, a gzip
// stream's length is only known once inflated); each size is checked against these before
// anything is allocated or inflated, so a small hostile file cannot make the program allocate,
// read or inflate gigabytes, overflow a size computation or exhaust the stack.
// docs/RELIABILITY.md ("Limits and hostile files") explains each one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cnn::limits {

// Elements of one tensor: 2^31 (8 GiB of float32). The largest tensor this library makes is a
// batch of activations (256 images x 32 channels x 28 x 28 = 6.4 M elements); a shape declaring
// more is a corrupted or hostile file, not a model, and refusing it keeps every byte count
// (elements x 4) far inside int64 and size_t.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

// Pixels of one image (rows x cols of a dataset image, width x height of a picture to decode):
// 2^26 (8192 x 8192). MNIST's are 28 x 28 and a photo of a digit is a few megapixels; a header
// declaring more is not an image this program can use.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// Classes of a classifier (an architecture's num_classes): 100,000. MNIST has 10, ImageNet-21k
// 21,841; a checkpoint declaring more is corrupted, and its classifier's weights would be huge.
inline constexpr int64_t kMaxClasses = 100000;

// Bytes of the data an IDX file declares (the inflated size, for .gz files): 256 MiB, five
// times MNIST's training images (47 MB). The datasets this build knows (MNIST, Fashion-MNIST)
// are that size; a header that declares more is refused before anything is allocated or inflated,
// so a 1 MB gzip cannot make the loader inflate and hold a gigabyte.
inline constexpr uint64_t kMaxIdxBytes = uint64_t{256} << 20;

// Bytes of a tensor archive or checkpoint file, read whole into memory: 1 GiB. A checkpoint of the
// tutorial's model is under 1 MB (with Adam's state); the largest test fixture 1 MB.
inline constexpr uint64_t kMaxArchiveBytes = uint64_t{1} << 30;

// Bytes of an ONNX file, read whole and parsed by protobuf: 1 GiB (the most kMaxParameters of
// float32 take, with room). The tutorial's model is 63 KB; protobuf's own limit is 2 GiB.
inline constexpr uint64_t kMaxOnnxBytes = uint64_t{1} << 30;

// Bytes of an archive's JSON header: 16 MiB. A checkpoint's header (architecture, options,
// history of a few hundred epochs) is a few kilobytes.
inline constexpr uint64_t kMaxArchiveHeaderBytes = uint64_t{16} << 20;

// Nesting depth of any JSON this program parses (archive headers, architectures, request
// bodies): 64. The deepest document it writes is 4 levels deep; parsing, copying, printing and
// destroying a JSON value recurse once per level, so a document of 100,000 '[' must be refused
// before it is parsed, not after it has overflowed the stack.
inline constexpr int kMaxJsonDepth = 64;

// A model file (cnn/nn/spec.h) is untrusted input too: it declares sizes, and every one is checked
// before the layer it sizes is built.
// Bytes of a model file: 16 MiB. The shipped ones are under 2 KB; a model file declares layers,
// not weights.
inline constexpr uint64_t kMaxModelFileBytes = uint64_t{16} << 20;
// Layers of one model, containers included: 4096. The deepest common CNNs (ResNet-152) have
// about 500 modules.
inline constexpr int64_t kMaxLayers = 4096;
// Nesting of containers (Sequential in Sequential): 16 levels.
inline constexpr int kMaxModelDepth = 16;
// Parameters of one model: 2^27 (134 M, 512 MiB of float32; training holds four times that, with
// gradients and Adam's two moments). VGG-16 has 138 M; the models this library is for, under 10 M.
inline constexpr int64_t kMaxParameters = int64_t{1} << 27;
// Elements of one layer's output for one image, and of a convolution's unfolded input (im2col)
// for one image: 2^26 (256 MiB of float32). A 224 x 224 x 64 map is 3.2 M.
inline constexpr int64_t kMaxActivationElements = int64_t{1} << 26;

// An image folder (cnn/data/image_folder.h) is decoded whole into memory; its sizes are checked
// after listing it and before any pixel buffer is allocated.
// Image files in one folder: 2^24 (16.7 M). ImageNet-1k's training set has 1.28 M; a listing of
// more is a wrong directory (a whole disk), and refusing it bounds the listing's own memory.
inline constexpr int64_t kMaxFolderImages = int64_t{1} << 24;
// Bytes of a folder's pixels, count x channels x rows x cols: 8 GiB. CIFAR-10 is 180 MB and Tiny
// ImageNet (100,000 images of 64 x 64 x 3) 1.2 GB; a folder of photographs at their own size
// would be hundreds of gigabytes, which must be refused with a request to resize, not found out
// by the allocator. Also the most a cache file (which holds these bytes) may declare.
inline constexpr uint64_t kMaxFolderBytes = uint64_t{8} << 30;
// Classes of an image folder: 256, because cnn::Dataset's labels are uint8.
inline constexpr int64_t kMaxFolderClasses = 256;

// Bytes of untrusted input (a file's JSON, a name, a request's body) quoted in one error message:
// 80. Enough to recognise the value; an error never echoes an unbounded input (cnn::excerpt in
// cnn/error.h quotes at most this much, escaping what is not printable).
inline constexpr std::size_t kExcerpt = 80;

}  // namespace cnn::limits
