// "Did you mean ...?": the nearest of some names to a misspelt one, for error messages (an
// unknown command or option, layer type or argument in a model file).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cnn {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest typo
// ("trian").
std::size_t edit_distance(const std::string& a, const std::string& b);

// Of the candidates, the one nearest to word, if near enough to be a likely typo (a third of the
// word may be wrong: "trian" -> "train", "kernal_size" -> "kernel_size", but "x" is near
// nothing); empty otherwise.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace cnn
