// Image decoding: truncated and inconsistent files are errors, never pictures.
#include "testing.h"

namespace cnn::testing {
namespace {}  // namespace
}  // namespace cnn::testing
