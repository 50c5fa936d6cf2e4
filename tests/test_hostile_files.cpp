// Hostile files: sizes checked before anything is allocated or inflated, errors that quote only a
// short excerpt.
#include "testing.h"

namespace cnn::testing {
namespace {}  // namespace
}  // namespace cnn::testing
