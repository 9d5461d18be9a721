// torchflip::_fir_window: a window of the 1-D true convolution of a signal
// with a short kernel, by explicit multiply-adds (CPU only).
//
// With x of n samples and w of m taps, the full convolution has n + m - 1
// samples,
//
//     full[i] = sum_k x[i - k] * w[k]        (x is zero outside [0, n)),
//
// and the operator returns out[t] = full[start + t] for 0 <= t < length
// (start may be negative and the window may extend past the support; those
// samples are zero). It is the direct engine of torchflip.signal for real 1-D
// inputs (torchflip/signal/_direct.py): the generic conv op unfolds its input
// into a taps x outputs matrix and runs a one-row matrix product, which for a
// single channel costs several times the m multiply-adds per output that a
// plain loop needs. Work is m multiply-adds per output sample, in blocks of
// outputs that stay in cache, four taps per pass over a block (so each output
// is loaded and stored once per four taps), blocks in parallel.
//
// dtypes: float32, float64 (accumulated in that precision, as the conv op
// does), and int64, whose sums wrap modulo 2^64 (computed in uint64, where
// wrapping is defined): exactly numpy's int64 arithmetic, which casting to a
// narrower integer type then reduces modulo 2^bits as numpy does.
//
// A private operator without autograd, Meta kernel or decomposition: the
// Python side calls it only for eager CPU calls that need no gradient, never
// under torch.compile, tracing or torch.func.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "vectorize.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace torchflip::detail {
namespace {

constexpr const char* kOp = "torchflip._fir_window";
// Outputs per block: 2048 doubles (16 KiB) plus the matching stretch of x
// stay in L1/L2 while every tap passes over them.
constexpr int64_t kBlock = 2048;

// Arithmetic type: unsigned for integers so that overflow wraps (defined).
template <typename T>
struct AccOf {
  using type = T;
};
template <>
struct AccOf<int64_t> {
  using type = uint64_t;
};
template <typename T>
using Acc = typename AccOf<T>::type;

// out[t] += w * x[t] for t in [lo, hi), where x is already offset so that
// x[t] is the sample that tap meets at output t.
template <typename A>
TORCHFLIP_VECTORIZE void axpy(A* __restrict out, const A* __restrict x, A w, int64_t lo,
                               int64_t hi) {
  for (int64_t t = lo; t < hi; ++t) {
    out[t] += w * x[t];
  }
}

// Four taps at once: x0..x3 are offset as in axpy.
template <typename A>
TORCHFLIP_VECTORIZE void axpy4(A* __restrict out, const A* __restrict x0,
                                const A* __restrict x1, const A* __restrict x2,
                                const A* __restrict x3, A w0, A w1, A w2, A w3, int64_t lo,
                                int64_t hi) {
  for (int64_t t = lo; t < hi; ++t) {
    out[t] += w0 * x0[t] + w1 * x1[t] + w2 * x2[t] + w3 * x3[t];
  }
}

template <typename T>
void fir_block(const T* x_data, int64_t n, const T* w_data, int64_t m, int64_t start,
               T* out_data, int64_t b0, int64_t b1) {
  using A = Acc<T>;
  const A* x = reinterpret_cast<const A*>(x_data);
  const A* w = reinterpret_cast<const A*>(w_data);
  A* out = reinterpret_cast<A*>(out_data);
  // Tap k meets x[start + t - k] at output t: pointer x + start - k, valid
  // for t in [k - start, n + k - start). Pointers are formed only for
  // in-range reads, as offsets added inside the loops' valid ranges.
  auto tap_range = [&](int64_t k, int64_t lo, int64_t hi) {
    return std::pair<int64_t, int64_t>(std::max(lo, k - start), std::min(hi, n + k - start));
  };
  auto single = [&](int64_t k, int64_t lo, int64_t hi) {
    auto [a, b] = tap_range(k, lo, hi);
    if (a < b) {
      axpy(out + a, x + (start + a - k), w[k], 0, b - a);
    }
  };
  int64_t k = 0;
  for (; k + 4 <= m; k += 4) {
    // Outputs where all four taps read inside x.
    const int64_t lo = std::max(b0, k + 3 - start);
    const int64_t hi = std::min(b1, n + k - start);
    if (lo >= hi) {
      for (int64_t j = k; j < k + 4; ++j) single(j, b0, b1);
      continue;
    }
    axpy4(out + lo, x + (start + lo - k), x + (start + lo - k - 1), x + (start + lo - k - 2),
          x + (start + lo - k - 3), w[k], w[k + 1], w[k + 2], w[k + 3], 0, hi - lo);
    for (int64_t j = k; j < k + 4; ++j) {
      single(j, b0, lo);
      single(j, hi, b1);
    }
  }
  for (; k < m; ++k) single(k, b0, b1);
}

template <typename T>
void fir_all(const at::Tensor& x, const at::Tensor& w, at::Tensor& out, int64_t start) {
  const T* xd = x.const_data_ptr<T>();
  const T* wd = w.const_data_ptr<T>();
  T* od = out.mutable_data_ptr<T>();
  const int64_t n = x.numel(), m = w.numel(), length = out.numel();
  const int64_t blocks = (length + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b) {
      fir_block(xd, n, wd, m, start, od, b * kBlock, std::min(length, (b + 1) * kBlock));
    }
  });
}

at::Tensor fir_window_kernel(const at::Tensor& x, const at::Tensor& w, int64_t start,
                             int64_t length) {
  TORCH_CHECK_VALUE(x.dim() == 1 && w.dim() == 1, kOp, ": x and w must be 1-D, got ", x.dim(),
                    "-D and ", w.dim(), "-D");
  TORCH_CHECK_TYPE(x.scalar_type() == w.scalar_type(), kOp,
                   ": x and w must share a dtype, got ", x.scalar_type(), " and ",
                   w.scalar_type());
  const auto dtype = x.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kLong, kOp,
                   ": dtype must be float32, float64 or int64, got ", dtype);
  TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu(), kOp, ": CPU tensors only");
  TORCH_CHECK_VALUE(length >= 0, kOp, ": length must be non-negative, got ", length);
  TORCH_CHECK_VALUE(w.numel() >= 1, kOp, ": w must not be empty");
  const at::Tensor xc = x.contiguous();
  const at::Tensor wc = w.contiguous();
  at::Tensor out = at::zeros({length}, x.options());
  AT_DISPATCH_SWITCH(dtype, kOp,
      AT_DISPATCH_CASE(at::kFloat, [&] { fir_all<scalar_t>(xc, wc, out, start); })
      AT_DISPATCH_CASE(at::kDouble, [&] { fir_all<scalar_t>(xc, wc, out, start); })
      AT_DISPATCH_CASE(at::kLong, [&] { fir_all<scalar_t>(xc, wc, out, start); }));
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchflip, m) {
  m.def("_fir_window(Tensor x, Tensor w, int start, int length) -> Tensor");
}

TORCH_LIBRARY_IMPL(torchflip, CPU, m) {
  m.impl("_fir_window", &fir_window_kernel);
}

}  // namespace torchflip::detail
