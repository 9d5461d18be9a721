// Reversal of spatial dimensions (reverse.h).
//
// ATen's CPU flip kernel computes a source index per element, which is slow
// when the reversed dimensions hold only a few elements: on the development
// CPU, flipping a 512x512x3x3 weight took 3.6 times a copy of it, and a
// 512x512x2 weight 9 times. Those are exactly the weights of the layers
// where the flip costs most, deep layers of small kernels. Such a weight is a
// run of rows of T contiguous elements (T = the product of the reversed
// sizes), and its reversal reverses each row. CPU tensors laid out that way
// (rows contiguous at least within each entry of the outer dimensions, as in
// a weight sliced along its input channels, or a contiguous activation) take
// a loop that runs at about the speed of a copy; in place, it swaps the
// elements of each row and needs no temporary. T up to 9 is fixed at
// compile time, so that the loop runs across rows; longer rows (3x3x3
// kernels, activations) take a loop over each row, where ATen's flip of a
// 128x128x3x3x3 weight took 2.6 times a copy. Out of place, rows of more
// than kLongestCopiedRow elements take ATen's flip, which was faster there
// (1.1 times a copy at 784 elements, against 1.4). Anything else (other
// devices, symbolic sizes under FakeTensor, channels_last tensors) takes
// ATen's flip, which is what the loops compute.
#include "reverse.h"

#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "vectorize.h"

namespace torchflip::detail {
namespace {

constexpr int64_t kLongestCopiedRow = 64;

std::optional<int64_t> known(const c10::SymInt& value) {
  return value.maybe_as_int();
}

// A tensor seen as segments of `rows` contiguous rows of `taps` elements;
// segment s starts at the offset given by `outer` (sizes and strides of the
// dimensions left over).
struct Rows {
  int64_t taps = 1, rows = 1, segments = 1;
  std::vector<int64_t> outer_sizes, outer_strides;

  int64_t segment_offset(int64_t s) const {
    int64_t offset = 0;
    for (int64_t d = static_cast<int64_t>(outer_sizes.size()) - 1; d >= 0;
         --d) {
      offset += (s % outer_sizes[d]) * outer_strides[d];
      s /= outer_sizes[d];
    }
    return offset;
  }
};

std::optional<Rows> cpu_rows(const at::Tensor& t,
                             const std::vector<int64_t>& dims) {
  if (dims.empty() || !t.device().is_cpu() || t.layout() != at::kStrided ||
      t.is_quantized() || t.is_conj() || t.is_neg()) {
    return std::nullopt;
  }
  const auto element = t.element_size();
  if (element != 2 && element != 4 && element != 8) return std::nullopt;
  const int64_t ndim = t.dim();
  std::vector<int64_t> sizes(ndim), strides(ndim);
  for (int64_t d = 0; d < ndim; ++d) {
    const auto size = known(t.sym_size(d));
    const auto stride = known(t.sym_stride(d));
    if (!size || !stride) return std::nullopt;
    sizes[d] = *size;
    strides[d] = *stride;
  }
  const int64_t first = dims.front();
  if (first < 1 || !std::is_sorted(dims.begin(), dims.end()) ||
      t.numel() == 0) {
    return std::nullopt;
  }
  // From `first` on, every dimension is reversed or has size 1 (so that
  // reversing the row reverses exactly `dims`), and the row is contiguous.
  Rows r;
  for (int64_t d = ndim - 1; d >= first; --d) {
    if (sizes[d] == 1) continue;
    if (std::find(dims.begin(), dims.end(), d) == dims.end() ||
        strides[d] != r.taps) {
      return std::nullopt;
    }
    r.taps *= sizes[d];
  }
  if (r.taps < 2) return std::nullopt;
  // The outer dimensions: the innermost ones that continue the rows
  // contiguously become `rows`, the rest are segments.
  int64_t d = first - 1;
  for (; d >= 0; --d) {
    if (sizes[d] != 1 && strides[d] != r.rows * r.taps) break;
    r.rows *= sizes[d];
  }
  for (; d >= 0; --d) {
    if (sizes[d] == 1) continue;
    r.outer_sizes.insert(r.outer_sizes.begin(), sizes[d]);
    r.outer_strides.insert(r.outer_strides.begin(), strides[d]);
    r.segments *= sizes[d];
  }
  return r;
}

template <int64_t T, typename Word>
TORCHFLIP_VECTORIZE void reverse_rows_into(const Word* __restrict in,
                                           Word* __restrict out,
                                           int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < T; ++t) out[r * T + t] = in[r * T + T - 1 - t];
  }
}

template <int64_t T, typename Word>
TORCHFLIP_VECTORIZE void reverse_rows_in_place(Word* __restrict data,
                                               int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < T / 2; ++t) {
      std::swap(data[r * T + t], data[r * T + T - 1 - t]);
    }
  }
}

// The same for rows of any length, one row at a time. A run-time length in
// the loops above instead measured slower (27-element rows, out of place:
// 2.0 times a copy, against 1.65 here).
template <typename Word>
TORCHFLIP_VECTORIZE void reverse_long_rows_into(const Word* __restrict in,
                                                Word* __restrict out,
                                                int64_t rows, int64_t taps) {
  for (int64_t r = 0; r < rows; ++r) {
    const Word* row = in + r * taps;
    Word* target = out + r * taps;
    for (int64_t t = 0; t < taps; ++t) target[t] = row[taps - 1 - t];
  }
}

template <typename Word>
TORCHFLIP_VECTORIZE void reverse_long_rows_in_place(Word* __restrict data,
                                                    int64_t rows,
                                                    int64_t taps) {
  for (int64_t r = 0; r < rows; ++r) {
    Word* row = data + r * taps;
    for (int64_t t = 0; t < taps / 2; ++t) {
      std::swap(row[t], row[taps - 1 - t]);
    }
  }
}

// Reverses the rows of `src` into the contiguous `dst`, or in place when
// `dst` is null; T = 0 stands for rows of r.taps elements, not known at
// compile time. The elements move as opaque words of their size: reversal
// never looks at values, so one loop serves every dtype of that size.
template <int64_t T, typename Word>
void reverse_words(const Rows& r, const at::Tensor& src, at::Tensor* dst) {
  Word* data = static_cast<Word*>(src.data_ptr());
  Word* out = dst ? static_cast<Word*>(dst->data_ptr()) : nullptr;
  const int64_t taps = T > 0 ? T : r.taps;
  // Parallel over chunks of about 32k elements.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 15) / taps);
  const int64_t per_segment = (r.rows + chunk - 1) / chunk;
  at::parallel_for(0, r.segments * per_segment, 1,
                   [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t segment = i / per_segment;
      const int64_t row = (i % per_segment) * chunk;
      const int64_t count = std::min(chunk, r.rows - row);
      Word* in = data + r.segment_offset(segment) + row * taps;
      Word* into = out ? out + (segment * r.rows + row) * taps : nullptr;
      if constexpr (T > 0) {
        if (into) {
          reverse_rows_into<T>(in, into, count);
        } else {
          reverse_rows_in_place<T>(in, count);
        }
      } else if (into) {
        reverse_long_rows_into(in, into, count, taps);
      } else {
        reverse_long_rows_in_place(in, count, taps);
      }
    }
  });
}

template <typename Word>
void reverse_taps(const Rows& r, const at::Tensor& src, at::Tensor* dst) {
  switch (r.taps) {
    case 2: return reverse_words<2, Word>(r, src, dst);
    case 3: return reverse_words<3, Word>(r, src, dst);
    case 4: return reverse_words<4, Word>(r, src, dst);
    case 5: return reverse_words<5, Word>(r, src, dst);
    case 6: return reverse_words<6, Word>(r, src, dst);
    case 7: return reverse_words<7, Word>(r, src, dst);
    case 8: return reverse_words<8, Word>(r, src, dst);
    case 9: return reverse_words<9, Word>(r, src, dst);
    default: return reverse_words<0, Word>(r, src, dst);
  }
}

void reverse_cpu(const Rows& r, const at::Tensor& src, at::Tensor* dst) {
  switch (src.element_size()) {
    case 2: return reverse_taps<uint16_t>(r, src, dst);
    case 4: return reverse_taps<uint32_t>(r, src, dst);
    case 8: return reverse_taps<uint64_t>(r, src, dst);
    default: TORCH_INTERNAL_ASSERT(false, "unexpected element size");
  }
}

// ATen has no in-place flip, and an out-of-place one holds a second tensor
// of t's size; block by block, the extra memory is about a sixteenth of t:
// over dim 0 when it has 16 entries or more (grad_weight's output channels,
// a large batch), else over dim 1 within each entry of dim 0. (Symbolic
// shapes, small tensors and unusual layouts take the plain flip.)
at::Tensor reverse_in_blocks(at::Tensor t, const std::vector<int64_t>& dims) {
  constexpr int64_t kBlocks = 16;
  constexpr int64_t kSmall = 1 << 14;  // elements; below this a copy is cheap
  const auto numel = known(t.sym_numel());
  const auto rows = known(t.sym_size(0));
  const auto cols = known(t.sym_size(1));
  if (!numel || !rows || !cols || *numel < kSmall || *rows * *cols < 2 ||
      !t.is_non_overlapping_and_dense()) {
    return t.flip(dims);
  }
  // In-place writes into views of a result that autograd never sees.
  at::AutoDispatchBelowADInplaceOrView guard;
  const auto reverse = [&](const at::Tensor& block) {
    block.copy_(block.flip(dims));
  };
  if (*rows >= kBlocks || *cols == 1) {
    for (const auto& block : t.split((*rows + kBlocks - 1) / kBlocks, 0)) {
      reverse(block);
    }
    return t;
  }
  const int64_t per_row = (kBlocks + *rows - 1) / *rows;
  const int64_t width = (*cols + per_row - 1) / per_row;
  for (int64_t row = 0; row < *rows; ++row) {
    for (const auto& block : t.narrow(0, row, 1).split(width, 1)) {
      reverse(block);
    }
  }
  return t;
}

}  // namespace

// Both entry points appear in torch.profiler's trace under their own names
// (with the operand's shape), whichever path runs: the tests read there
// which operand each phase of a convolution reversed.
at::Tensor reversed(const at::Tensor& t, const std::vector<int64_t>& dims) {
  RECORD_FUNCTION("torchflip::reverse", std::vector<c10::IValue>({t}));
  const auto rows = cpu_rows(t, dims);
  if (!rows || rows->taps > kLongestCopiedRow) return t.flip(dims);
  at::Tensor out = at::empty(t.sizes(), t.options());
  reverse_cpu(*rows, t, &out);
  return out;
}

at::Tensor reverse_in_place(at::Tensor t, const std::vector<int64_t>& dims) {
  RECORD_FUNCTION("torchflip::reverse_in_place",
                  std::vector<c10::IValue>({t}));
  const auto rows = cpu_rows(t, dims);
  // Rows that overlap (an expanded tensor) would be reversed more than once.
  if (!rows || !t.is_non_overlapping_and_dense()) {
    return reverse_in_blocks(std::move(t), dims);
  }
  reverse_cpu(*rows, t, nullptr);
  return t;
}

namespace {

// torchflip::_reverse and _reverse_: the two entry points above as private
// operators, for tests and benchmarks of the reversal itself.
void check_reverse_args(const at::Tensor& t, c10::IntArrayRef dims) {
  int64_t previous = 1;
  for (const int64_t d : dims) {
    TORCH_CHECK_VALUE(d > previous && d < t.dim(),
                      "torchflip._reverse: expected 'dims' to be increasing "
                      "spatial dimensions (from 2 to ", t.dim() - 1,
                      "), but got ", dims);
    previous = d;
  }
}

at::Tensor reverse_kernel(const at::Tensor& t, c10::IntArrayRef dims) {
  check_reverse_args(t, dims);
  return reversed(t, dims.vec());
}

void reverse_in_place_kernel(const at::Tensor& t, c10::IntArrayRef dims) {
  check_reverse_args(t, dims);
  const at::Tensor result = reverse_in_place(t, dims.vec());
  if (!result.is_same(t)) t.copy_(result);  // the plain-flip fallback
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchflip, m) {
  m.def("_reverse(Tensor self, int[] dims) -> Tensor");
  // Custom mutating operators return nothing (functionalization's rule).
  m.def("_reverse_(Tensor(a!) self, int[] dims) -> ()");
}

TORCH_LIBRARY_IMPL(torchflip, CompositeExplicitAutograd, m) {
  m.impl("_reverse", &reverse_kernel);
  m.impl("_reverse_", &reverse_in_place_kernel);
}

}  // namespace torchflip::detail
