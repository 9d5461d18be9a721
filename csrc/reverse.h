// Reversal of the spatial dimensions of a tensor: the one piece of work a
// true convolution adds to ATen's cross-correlation.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace torchflip::detail {

// t.flip(dims), for spatial dims (never 0 or 1).
at::Tensor reversed(const at::Tensor& t, const std::vector<int64_t>& dims);

// t reversed along `dims` in place (t itself is returned), holding at most
// about a sixteenth of t in temporary memory.
at::Tensor reverse_in_place(at::Tensor t, const std::vector<int64_t>& dims);

}  // namespace torchflip::detail
