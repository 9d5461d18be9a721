// torchflip::fft_conv: a window of the linear (true) convolution of two
// tensors over chosen axes, computed with the FFT (convolution theorem).
//
// For every axis d in `axes`, with n1 = in1.size(d) and n2 = in2.size(d), the
// full linear convolution has n1 + n2 - 1 samples,
//
//     full[i] = sum_k in1[i - k] * in2[k]        (0 <= i < n1 + n2 - 1),
//
// and the operator returns out[t] = full[start + t] for 0 <= t < length,
// reading zero wherever start + t falls outside [0, n1 + n2 - 1). The other
// dimensions broadcast (equal sizes, or 1 in one input). Both inputs share one
// dtype: float32/float64 use rfftn/irfftn, complex64/complex128 fftn/ifftn.
//
// The FFT length n along each axis turns the product of spectra into a cyclic
// convolution, in which full[i] and full[i + n] land in the same bin. The
// requested samples i in [lo, hi) (the window clipped to the support) are
// alias-free exactly when i < n and i + n >= n1 + n2 - 1 for all of them, that
// is n >= hi and n >= (n1 + n2 - 1) - lo. A 'valid' window therefore needs only
// n >= n1, not the n1 + n2 - 1 of a full convolution. The caller picks n (a
// fast FFT length); the operator checks the condition. n may be shorter than
// an input: samples at index >= n only feed outputs at index >= n, none of
// which is requested, so the transforms may drop them (rfftn truncates).
//
// Registered at CompositeExplicitAutograd, so the same ATen code serves CPU,
// CUDA and Meta (FakeTensor, torch.compile). Its autograd formula is
// registered from Python (torchflip/signal/_fft_op.py); the gradients are
// fft_conv windows again, so every derivative stays on the FFT path.
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/fft_fftn.h>
#include <ATen/ops/fft_ifftn.h>
#include <ATen/ops/fft_irfftn.h>
#include <ATen/ops/fft_rfftn.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <sstream>
#include <vector>

namespace torchflip::detail {
namespace {

constexpr const char* kOp = "torchflip.fft_conv";

template <typename Values>
std::string list_str(const Values& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) {
    out << (i ? ", " : "") << values[i];
  }
  out << "]";
  return out.str();
}

// Wraps negative axes and rejects out-of-range or repeated ones.
std::vector<int64_t> normalize_axes(at::IntArrayRef axes, int64_t ndim) {
  std::vector<int64_t> out;
  for (const int64_t axis : axes) {
    TORCH_CHECK_INDEX(axis >= -ndim && axis < ndim, kOp, ": axis ", axis,
                      " is out of range for tensors with ", ndim,
                      " dimensions");
    const int64_t wrapped = axis < 0 ? axis + ndim : axis;
    for (const int64_t seen : out) {
      TORCH_CHECK_VALUE(seen != wrapped, kOp, ": axes must be unique, got ",
                        list_str(axes));
    }
    out.push_back(wrapped);
  }
  return out;
}

void check_inputs(const at::Tensor& in1, const at::Tensor& in2,
                  const std::vector<int64_t>& axes,
                  c10::SymIntArrayRef start, c10::SymIntArrayRef length,
                  c10::SymIntArrayRef fft_shape) {
  const auto dtype = in1.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble ||
                       dtype == at::kComplexFloat ||
                       dtype == at::kComplexDouble,
                   kOp,
                   ": expected float32, float64, complex64 or complex128 "
                   "inputs, but got ",
                   dtype);
  TORCH_CHECK_TYPE(in2.scalar_type() == dtype, kOp,
                   ": expected in1 and in2 to share one dtype, but got ",
                   dtype, " and ", in2.scalar_type());
  TORCH_CHECK(in1.device() == in2.device(), kOp,
              ": expected in1 and in2 on one device, but got ", in1.device(),
              " and ", in2.device());
  TORCH_CHECK_VALUE(in1.dim() == in2.dim(), kOp,
                    ": expected in1 and in2 with the same number of "
                    "dimensions, but got shapes ",
                    list_str(in1.sym_sizes()), " and ",
                    list_str(in2.sym_sizes()));
  const size_t n = axes.size();
  TORCH_CHECK_VALUE(start.size() == n && length.size() == n &&
                        fft_shape.size() == n,
                    kOp, ": expected one start, length and fft_shape value ",
                    "per axis (", n, " axes), but got start=",
                    list_str(start), ", length=", list_str(length),
                    ", fft_shape=", list_str(fft_shape));

  std::vector<bool> is_axis(in1.dim(), false);
  for (const int64_t axis : axes) is_axis[axis] = true;
  for (int64_t d = 0; d < in1.dim(); ++d) {
    const c10::SymInt& s1 = in1.sym_size(d);
    const c10::SymInt& s2 = in2.sym_size(d);
    if (is_axis[d]) {
      TORCH_CHECK_VALUE(s1 >= 1 && s2 >= 1, kOp,
                        ": expected non-empty inputs along the convolution "
                        "axes, but got shapes ",
                        list_str(in1.sym_sizes()), " and ",
                        list_str(in2.sym_sizes()));
    } else {
      TORCH_CHECK_VALUE(s1 == s2 || s1 == 1 || s2 == 1, kOp,
                        ": dimension ", d,
                        " is not a convolution axis, so its sizes must "
                        "broadcast, but got shapes ",
                        list_str(in1.sym_sizes()), " and ",
                        list_str(in2.sym_sizes()));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t d = axes[i];
    TORCH_CHECK_VALUE(length[i] >= 0, kOp,
                      ": expected non-negative lengths, got length=",
                      list_str(length));
    TORCH_CHECK_VALUE(fft_shape[i] >= 1, kOp,
                      ": expected positive FFT lengths, got fft_shape=",
                      list_str(fft_shape));
    const c10::SymInt full = in1.sym_size(d) + in2.sym_size(d) - 1;
    const c10::SymInt lo = start[i].max(0);
    const c10::SymInt hi = (start[i] + length[i]).min(full);
    if (lo < hi) {
      TORCH_CHECK_VALUE(
          fft_shape[i] >= hi && fft_shape[i] >= full - lo, kOp,
          ": FFT length ", fft_shape[i], " on axis ", d,
          " would alias the window [", start[i], ", ", start[i] + length[i],
          ") of a convolution with ", full,
          " samples; it must be at least max(", hi, ", ", full - lo, ")");
    }
  }
}

bool same_batch_shape(const at::Tensor& in1, const at::Tensor& in2,
                      const std::vector<int64_t>& axes) {
  std::vector<bool> is_axis(in1.dim(), false);
  for (const int64_t axis : axes) is_axis[axis] = true;
  for (int64_t d = 0; d < in1.dim(); ++d) {
    if (!is_axis[d] && in1.sym_size(d) != in2.sym_size(d)) return false;
  }
  return true;
}

// Both inputs padded into one (2, ...) buffer and transformed by a single
// batched rfftn: MKL transforms a batch of two 1-D signals far faster than two
// single ones (one descriptor, vectorised across the batch).
at::Tensor stacked_rfft_conv(const at::Tensor& in1, const at::Tensor& in2,
                             const std::vector<int64_t>& axes,
                             c10::SymIntArrayRef fft_shape) {
  std::vector<c10::SymInt> shape{c10::SymInt(2)};
  for (const c10::SymInt& size : in1.sym_sizes()) shape.push_back(size);
  at::Tensor part1 = in1, part2 = in2;
  std::vector<int64_t> shifted;
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t d = axes[i];
    shape[d + 1] = fft_shape[i];
    // Samples at or beyond the FFT length never reach an alias-free output
    // (see the top of this file), so, like rfftn's own truncation, drop them.
    part1 = part1.narrow_symint(d, 0, in1.sym_size(d).min(fft_shape[i]));
    part2 = part2.narrow_symint(d, 0, in2.sym_size(d).min(fft_shape[i]));
    shifted.push_back(d + 1);
  }
  at::Tensor buffer = at::zeros_symint(shape, in1.options());
  at::Tensor slot1 = buffer.select(0, 0), slot2 = buffer.select(0, 1);
  for (const int64_t d : axes) {
    slot1 = slot1.narrow_symint(d, 0, part1.sym_size(d));
    slot2 = slot2.narrow_symint(d, 0, part2.sym_size(d));
  }
  slot1.copy_(part1);
  slot2.copy_(part2);
  const at::Tensor spectra = at::fft_rfftn_symint(buffer, fft_shape, shifted);
  return at::fft_irfftn_symint(spectra.select(0, 0) * spectra.select(0, 1),
                               fft_shape, axes);
}

// Stacking pays for one axis at any length (for several axes, filling the
// stacked buffer costs more than the second transform call saves).
bool use_stacked(const at::Tensor& in1, const at::Tensor& in2,
                 const std::vector<int64_t>& axes) {
  return axes.size() == 1 && !in1.is_complex() &&
         same_batch_shape(in1, in2, axes);
}

at::Tensor fft_conv_kernel(const at::Tensor& in1, const at::Tensor& in2,
                           at::IntArrayRef axes_arg,
                           c10::SymIntArrayRef start,
                           c10::SymIntArrayRef length,
                           c10::SymIntArrayRef fft_shape) {
  TORCH_CHECK(in1.defined() && in2.defined(), kOp,
              ": in1 and in2 must be defined tensors");
  const auto axes = normalize_axes(axes_arg, in1.dim());
  check_inputs(in1, in2, axes, start, length, fft_shape);
  if (axes.empty()) return in1 * in2;

  // Cyclic convolution of length fft_shape along the axes.
  at::Tensor cyclic;
  if (use_stacked(in1, in2, axes)) {
    cyclic = stacked_rfft_conv(in1, in2, axes, fft_shape);
  } else if (in1.is_complex()) {
    cyclic = at::fft_ifftn_symint(at::fft_fftn_symint(in1, fft_shape, axes) *
                                      at::fft_fftn_symint(in2, fft_shape, axes),
                                  fft_shape, axes);
  } else {
    cyclic = at::fft_irfftn_symint(
        at::fft_rfftn_symint(in1, fft_shape, axes) *
            at::fft_rfftn_symint(in2, fft_shape, axes),
        fft_shape, axes);
  }

  // Cut the window: samples [lo, hi) come from the cyclic result unaliased;
  // the rest of the window lies outside the support and is zero.
  std::vector<c10::SymInt> pads(2 * in1.dim(), c10::SymInt(0));
  bool padded = false;
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t d = axes[i];
    const c10::SymInt full = in1.sym_size(d) + in2.sym_size(d) - 1;
    const c10::SymInt lo = start[i].max(0);
    const c10::SymInt hi = (start[i] + length[i]).min(full);
    c10::SymInt before, after;
    if (lo < hi) {
      cyclic = cyclic.narrow_symint(d, lo, hi - lo);
      before = lo - start[i];
      after = start[i] + length[i] - hi;
    } else {
      cyclic = cyclic.narrow_symint(d, 0, 0);
      before = length[i];
      after = 0;
    }
    // constant_pad_nd lists (before, after) pairs from the last dimension.
    const int64_t slot = 2 * (in1.dim() - 1 - d);
    pads[slot] = before;
    pads[slot + 1] = after;
    padded = padded || before != 0 || after != 0;
  }
  if (padded) return at::constant_pad_nd_symint(cyclic, pads, 0);
  return cyclic;
}

}  // namespace

// _fft_conv is the same kernel with no autograd formula. fft_conv's autograd
// is registered from Python, so every call of fft_conv passes through Python
// once more; the signal functions call the twin instead when nothing needs a
// gradient (as torchflip does with _conv).
TORCH_LIBRARY_FRAGMENT(torchflip, m) {
  m.def(
      "fft_conv(Tensor in1, Tensor in2, int[] axes, SymInt[] start, "
      "SymInt[] length, SymInt[] fft_shape) -> Tensor");
  m.def(
      "_fft_conv(Tensor in1, Tensor in2, int[] axes, SymInt[] start, "
      "SymInt[] length, SymInt[] fft_shape) -> Tensor");
}

TORCH_LIBRARY_IMPL(torchflip, CompositeExplicitAutograd, m) {
  m.impl("fft_conv", &fft_conv_kernel);
  m.impl("_fft_conv", &fft_conv_kernel);
}

}  // namespace torchflip::detail
