#include "true_convolution.h"

#include "reverse.h"

#include <algorithm>
#include <limits>
#include <optional>

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/ops/complex.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/imag.h>
#include <ATen/ops/real.h>

namespace torchflip::detail {
namespace {

// Spatial dimensions of the weight that a flip actually reverses. A dimension
// of size 1 is its own reversal, so it is skipped; a 1x1 kernel is then used
// as it is, and pointwise convolutions cost exactly what torch's do.
std::vector<int64_t> flipped_dims(const at::Tensor& weight) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < weight.dim(); ++d) {
    if (weight.sym_size(d) != 1) dims.push_back(d);
  }
  return dims;
}

// The real and imaginary parts of a complex tensor, as real tensors. A
// conjugate view is resolved first, since its parts cannot be viewed.
std::pair<at::Tensor, at::Tensor> parts(const at::Tensor& z) {
  const at::Tensor resolved = z.resolve_conj();
  return {at::real(resolved), at::imag(resolved)};
}

// Extends a real bilinear map f to complex operands a = ar + i ai and
// b = br + i bi with three real evaluations (Gauss's trick, as torch.nn does):
//   f(a, b) = [f(ar, br) - f(ai, bi)] + i [f(ar + ai, br + bi) - f(ar, br) - f(ai, bi)].
// The input and weight gradients of a convolution are bilinear, so this one
// rule gives the complex backward from the real one.
template <typename RealBilinear>
at::Tensor complex_bilinear(const RealBilinear& f, const at::Tensor& ar,
                            const at::Tensor& ai, const at::Tensor& br,
                            const at::Tensor& bi) {
  const at::Tensor rr = f(ar, br);
  const at::Tensor ii = f(ai, bi);
  const at::Tensor mixed = f(ar.add(ai), br.add(bi));
  return at::complex(rr.sub(ii), mixed.sub(rr).sub_(ii));
}

// Which operand a real convolution reverses. A true convolution is the
// cross-correlation with the reversed weight, but for a convolution whose
// last window ends exactly at the end of its padded input ("aligned"), it is
// equally the reversed cross-correlation of the reversed input with the
// weight as it is:
//   y = R(corr(R(x), w))                           (forward)
//   grad_input = R(corr_input_grad(R(g), w))      (backward)
//   grad_weight = corr_weight_grad(R(x), R(g))
// where R reverses the spatial dimensions the weight would have had reversed
// (those of size > 1 in the kernel). Proof in 1-D, for a padded input x_p of
// length L_p, stride s, dilation d and O outputs with
// L_p = s (O - 1) + d (K - 1) + 1: substituting k -> K - 1 - k,
//   y[i] = sum_k x_p[s i + d k] w[K-1-k] = sum_k x_p[L_p - 1 - s (O-1-i) - d k] w[k]
//        = corr(R(x_p), w)[O - 1 - i],
// and R(x_p) is R(x) padded as x is; the gradients are the adjoints of this.
//
// The result of a reversed activation is reversed back in place
// (reverse_in_place), as grad_weight always is; a reversed output would
// otherwise be a second output-sized tensor. The forward reverses x only
// where |x| + |y| < |w|, where its two reversals cost less time than the
// weight's one (r3d.layer2, |x| = |y| = 0.9 |w|, measured 2-3% slower than
// the naive flip with |x| < |w|); the forward's held copy is rarely the peak
// of a training step. grad_input reverses the smaller of g and w, since its
// held copy is at the peak: the time rule there raised ResNet-50
// layer3.1-5.conv2's peak fwd+bwd memory (|g| = 0.68 |w|) to 1.09 of
// torch.nn's. Only a weight at most an eighth larger than g is reversed when
// that is the faster (input_grad_reverses_g): r3d.layer2, 0.5% slower than
// the naive flip with g reversed, is then at parity, for 1.02 of torch.nn's
// peak memory rather than 1.00. The weight
// gradient comes from R(x) and R(g) only when they are under a sixteenth of
// the weight, the most that reversing grad_weight in place holds.
//
// The condition always holds at stride 1. At larger strides that leave the
// last r inputs unused, the reversed input would need r more zeros per
// dimension (padding p - r; for p < r, its first r - p entries cropped and
// p zeros appended), and grad_input would then be taken for L + r entries
// per dimension (or copied into a tensor with r - p zeros): ATen holds
// several grad_input-sized buffers for a strided convolution, so this
// measured worse than reversing the weight (peak of fwd+bwd over torch.nn's:
// resnet50 layer3.0.conv2/2 1.14 against 1.11, wav2vec2.conv5 1.27 against
// 1.14). Such layers reverse the weight, and where the weight is the larger
// of w and g but under twice the input, grad_input takes half of the input
// channels at a time (input_grad_in_halves, weight_dwarfs_input).
struct FlipPlan {
  std::vector<int64_t> dims;  // the spatial dimensions that are reversed
  // Per spatial dimension, the inputs past the last window (their gradient
  // is zero); nullopt when a size is symbolic.
  std::optional<std::vector<int64_t>> unused;
  bool aligned = false;  // none along `dims`: activations may be reversed
};

// Symbolic sizes (FakeTensor, torch.compile with dynamic shapes) give the
// same shapes whichever operand is reversed, so they keep the weight path and
// no decision guards on a size.
std::optional<int64_t> known(const c10::SymInt& value) {
  return value.maybe_as_int();
}

std::optional<std::vector<int64_t>> unused_inputs(const at::Tensor& input,
                                                  const at::Tensor& weight,
                                                  const ConvParams& p) {
  std::vector<int64_t> unused;
  for (int64_t d = 2; d < input.dim(); ++d) {
    const auto i = static_cast<size_t>(d - 2);
    const auto size = known(input.sym_size(d));
    const auto kernel = known(weight.sym_size(d));
    const auto stride = known(p.stride[i]);
    const auto padding = known(p.padding[i]);
    const auto dilation = known(p.dilation[i]);
    if (!size || !kernel || !stride || !padding || !dilation) return {};
    const int64_t span = *size + 2 * *padding - *dilation * (*kernel - 1) - 1;
    if (span < 0) return {};
    unused.push_back(span % *stride);
  }
  return unused;
}

FlipPlan plan_flip(const at::Tensor& input, const at::Tensor& weight,
                   const ConvParams& p) {
  FlipPlan plan{flipped_dims(weight), std::nullopt, false};
  if (plan.dims.empty() || p.transposed) return plan;
  plan.unused = unused_inputs(input, weight, p);
  plan.aligned = plan.unused.has_value() &&
                 std::all_of(plan.dims.begin(), plan.dims.end(), [&](int64_t d) {
                   return (*plan.unused)[static_cast<size_t>(d - 2)] == 0;
                 });
  return plan;
}

// Whether known sizes show a < b.
bool smaller(const c10::SymInt& a, const c10::SymInt& b) {
  const auto x = known(a);
  const auto y = known(b);
  return x && y && *x < *y;
}

// Whether reversing an activation (a elements) and then the result back in
// place (b elements) costs less time than reversing the weight (w elements);
// the reversed copy held is then a < w as well.
bool reversals_cheaper(const c10::SymInt& a, const c10::SymInt& b,
                       const c10::SymInt& w) {
  const auto x = known(a);
  const auto y = known(b);
  const auto z = known(w);
  return x && y && z && *x + *y < *z;
}

// Whether grad_input reverses g (and its result back in place) rather than
// the weight: where g is the smaller copy to hold, unless the weight is at
// most an eighth larger and its one reversal costs less time than the two of
// g and grad_input. The held copy then grows by at most |g| / 8, under 5% of
// the backward's peak, which holds at least y, grad_weight and the copy
// (2 |g| + |w|).
bool input_grad_reverses_g(const c10::SymInt& g, const c10::SymInt& gi,
                           const c10::SymInt& w) {
  if (!smaller(g, w)) return false;
  const int64_t grad = *known(g);
  return 8 * (*known(w) - grad) > grad || reversals_cheaper(g, gi, w);
}

c10::SymInt output_numel(const at::Tensor& input, const at::Tensor& weight,
                         const ConvParams& p) {
  c10::SymInt numel = 1;
  for (const auto& size : conv_output_shape(input, weight, p)) numel *= size;
  return numel;
}

bool has_known_sizes(const at::Tensor& t) {
  const auto sizes = t.sym_sizes();
  return std::all_of(sizes.begin(), sizes.end(), [](const c10::SymInt& size) {
    return known(size).has_value();
  });
}

at::Tensor real_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const ConvParams& p) {
  const auto convolve = [&](const at::Tensor& x, const at::Tensor& w) {
    return at::convolution_symint(x, w, bias, p.stride, p.padding, p.dilation,
                                  p.transposed, p.output_padding, p.groups);
  };
  const FlipPlan plan = plan_flip(input, weight, p);
  if (plan.dims.empty()) return convolve(input, weight);
  if (plan.aligned && reversals_cheaper(input.sym_numel(),
                                        output_numel(input, weight, p),
                                        weight.sym_numel())) {
    return reverse_in_place(convolve(reversed(input, plan.dims), weight),
                            plan.dims);
  }
  return convolve(input, reversed(weight, plan.dims));
}

// ATen 2.13's CPU (oneDNN) bfloat16 transposed convolution crashes the
// process on inputs of 2^31 elements or more.
bool transposed_convolution_crashes(const at::Tensor& input) {
  return input.device().is_cpu() && input.scalar_type() == at::kBFloat16 &&
         input.sym_numel() >= std::numeric_limits<int32_t>::max();
}

// Where the weight is at least twice the input, the whole reversed weight is
// held while grad_input is computed: the peak of the step is then the
// gradients' |x| + |w| all the same (ResNet-50 layer4.0.conv2/2, |w| = 2.9
// |x|: peak fwd+bwd 1.04 of torch.nn's, time 1.07 against 1.09 in halves,
// Xeon VM). With a smaller weight ATen's strided grad_input buffers set the
// peak, and the halves keep it (layer3.0.conv2/2, |w| = 0.37 |x|: 1.11 whole).
bool weight_dwarfs_input(const at::Tensor& input, const at::Tensor& weight) {
  return input.numel() * 2 <= weight.numel();
}

// grad_input = corr_input_grad(g, R(w)) for half of the input channels (of
// every group) at a time, each half from its half of the reversed weight and
// copied into place: half the weight's reversal is held, and on CPU ATen's
// own buffers for a strided grad_input (oneDNN's blocked layout and its
// reorders, several grad_input-sized tensors) shrink with the half. The
// transposed convolution is that gradient without reading the input, whose
// channel slice convolution_backward would copy; its output padding restores
// the unused trailing inputs.
at::Tensor input_grad_in_halves(const at::Tensor& grad_output,
                                const at::Tensor& input,
                                const at::Tensor& weight, const FlipPlan& plan,
                                const ConvParams& p, int64_t groups) {
  const c10::SymDimVector output_padding(plan.unused->begin(),
                                         plan.unused->end());
  const int64_t per_group = weight.size(1);
  const int64_t half = (per_group + 1) / 2;
  at::Tensor grad_input = at::empty(
      input.sizes(),
      input.options().memory_format(input.suggest_memory_format()));
  const at::Tensor grouped = grad_input.unflatten(1, {groups, per_group});
  for (int64_t start = 0; start < per_group; start += half) {
    const int64_t width = std::min(half, per_group - start);
    const at::Tensor piece = at::convolution_symint(
        grad_output, reversed(weight.narrow(1, start, width), plan.dims),
        std::nullopt, p.stride, p.padding, p.dilation, /*transposed=*/true,
        output_padding, p.groups);
    grouped.narrow(2, start, width).copy_(piece.unflatten(1, {groups, width}));
  }
  return grad_input;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> real_convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, const ConvParams& p,
    std::array<bool, 3> output_mask) {
  std::optional<c10::SymDimVector> bias_sizes;
  if (output_mask[2]) {
    bias_sizes = c10::SymDimVector{p.transposed ? weight.sym_size(1) * p.groups
                                                : weight.sym_size(0)};
  }
  const auto backward = [&](const at::Tensor& g, const at::Tensor& x,
                            const at::Tensor& w, std::array<bool, 3> mask) {
    auto grads = at::convolution_backward_symint(
        g, x, w, mask[2] ? at::OptionalSymIntArrayRef(*bias_sizes) : std::nullopt,
        p.stride, p.padding, p.dilation, p.transposed, p.output_padding,
        p.groups, mask);
    // Some ATen backends compute a gradient nobody asked for (CPU returns
    // grad_weight whenever grad_bias is requested); the mask is the contract.
    if (!mask[0]) std::get<0>(grads) = at::Tensor();
    if (!mask[1]) std::get<1>(grads) = at::Tensor();
    if (!mask[2]) std::get<2>(grads) = at::Tensor();
    return grads;
  };
  const FlipPlan plan = plan_flip(input, weight, p);
  if (plan.dims.empty()) {
    return backward(grad_output, input, weight, output_mask);
  }
  const bool weight_or_bias = output_mask[1] || output_mask[2];
  // grad_weight = corr_weight_grad(R(x), R(g)) too, when the activations are
  // under a sixteenth of the weight: R(x) and R(g) are held while it is
  // computed, where the weight path holds a sixteenth of the weight (below).
  const auto activations = known(input.sym_numel() + grad_output.sym_numel());
  const auto weight_numel = known(weight.sym_numel());
  const bool reversed_weight_grad = weight_or_bias && plan.aligned &&
                                    activations && weight_numel &&
                                    16 * *activations <= *weight_numel;
  const bool reversed_input_grad =
      output_mask[0] && plan.aligned &&
      input_grad_reverses_g(grad_output.sym_numel(), input.sym_numel(),
                            weight.sym_numel());
  // grad_input first, with whichever operand is smaller; what it reversed is
  // freed before grad_weight exists.
  at::Tensor grad_input, grad_weight, grad_bias;
  at::Tensor reversed_grad = reversed_input_grad || reversed_weight_grad
                                 ? reversed(grad_output, plan.dims)
                                 : at::Tensor();
  if (reversed_input_grad && !reversed_weight_grad) {
    grad_input = std::get<0>(
        backward(reversed_grad, input, weight, {true, false, false}));
    reversed_grad.reset();
    grad_input = reverse_in_place(std::move(grad_input), plan.dims);
  } else if (output_mask[0] && !reversed_input_grad) {
    // Where g is the smaller operand but the activations cannot be reversed,
    // the weight is reversed half at a time.
    const auto groups = known(p.groups);
    if (!plan.aligned && plan.unused && groups && has_known_sizes(input) &&
        has_known_sizes(weight) && weight.size(1) > 1 &&
        smaller(grad_output.sym_numel(), weight.sym_numel()) &&
        !weight_dwarfs_input(input, weight) &&
        !transposed_convolution_crashes(grad_output)) {
      grad_input = input_grad_in_halves(grad_output, input, weight, plan, p,
                                        *groups);
    } else {
      grad_input = std::get<0>(backward(grad_output, input,
                                        reversed(weight, plan.dims),
                                        {true, false, false}));
    }
  }
  if (reversed_weight_grad) {
    // grad_input, where it reverses g too, comes from the same call: two
    // calls would hold R(x) and R(g) at their peak all the same, and ATen
    // computes the two together faster (512->512 3x3 @7x7, batch 1: fwd+bwd
    // 1.015 of torch.nn's time against 1.020 with two calls, Xeon VM).
    at::Tensor grad_of_reversed_input;
    std::tie(grad_of_reversed_input, grad_weight, grad_bias) =
        backward(reversed_grad, reversed(input, plan.dims), weight,
                 {reversed_input_grad, output_mask[1], output_mask[2]});
    if (reversed_input_grad) {
      grad_input = reverse_in_place(std::move(grad_of_reversed_input),
                                    plan.dims);
    }
    return {grad_input, grad_weight, grad_bias};
  }
  // grad_weight is the gradient of the reversed weight, reversed back in
  // place. The call reads only the weight's shape, so it gets the weight as
  // it is.
  if (weight_or_bias) {
    std::tie(std::ignore, grad_weight, grad_bias) = backward(
        grad_output, input, weight, {false, output_mask[1], output_mask[2]});
  }
  if (grad_weight.defined()) {
    grad_weight = reverse_in_place(std::move(grad_weight), plan.dims);
  }
  return {grad_input, grad_weight, grad_bias};
}

// complex_bilinear with the bias folded into the real convolutions, as
// torch.nn folds it, so that rounding matches torch.nn's in low precision:
//   real = conv(xr, wr) + br - conv(xi, wi),
//   imag = [conv(xr + xi, wr + wi) + br + bi] - [conv(xr, wr) + br] - conv(xi, wi).
at::Tensor complex_convolution(const at::Tensor& input,
                               const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias,
                               const ConvParams& p) {
  const auto [xr, xi] = parts(input);
  const auto [wr, wi] = parts(weight);
  std::optional<at::Tensor> bias_rr, bias_mixed;
  if (bias.has_value() && bias->defined()) {
    const auto [br, bi] = parts(*bias);
    bias_rr = br;
    bias_mixed = br.add(bi);
  }
  const at::Tensor rr = real_convolution(xr, wr, bias_rr, p);
  const at::Tensor ii = real_convolution(xi, wi, std::nullopt, p);
  const at::Tensor mixed =
      real_convolution(xr.add(xi), wr.add(wi), bias_mixed, p);
  return at::complex(rr.sub(ii), mixed.sub(rr).sub_(ii));
}

// Gradients in PyTorch's convention for complex tensors (the conjugate
// Wirtinger derivative, see torch's autograd notes): for y = conv(x, w),
//   grad_input = conv_input_grad(grad_output, conj(w)),
//   grad_weight = conv_weight_grad(grad_output, conj(x)),
//   grad_bias = the sum of grad_output over all but the channel dimension.
std::tuple<at::Tensor, at::Tensor, at::Tensor> complex_convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, const ConvParams& p,
    std::array<bool, 3> output_mask) {
  const auto [gr, gi] = parts(grad_output);
  at::Tensor grad_input, grad_weight, grad_bias;
  if (output_mask[0]) {
    const auto [wr, wi] = parts(weight);
    const at::Tensor input_shape = at::real(input);
    const auto input_grad = [&](const at::Tensor& g, const at::Tensor& w) {
      return std::get<0>(real_convolution_backward(g, input_shape, w, p,
                                                   {true, false, false}));
    };
    grad_input = complex_bilinear(input_grad, gr, gi, wr, wi.neg());
  }
  if (output_mask[1]) {
    const auto [xr, xi] = parts(input);
    const at::Tensor weight_shape = at::real(weight);
    const auto weight_grad = [&](const at::Tensor& g, const at::Tensor& x) {
      return std::get<1>(real_convolution_backward(g, x, weight_shape, p,
                                                   {false, true, false}));
    };
    grad_weight = complex_bilinear(weight_grad, gr, gi, xr, xi.neg());
  }
  if (output_mask[2]) {
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < grad_output.dim(); ++d) dims.push_back(d);
    grad_bias = grad_output.sum(dims);
  }
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace

at::Tensor true_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const ConvParams& p) {
  // Below autograd: the operators' derivatives are their own (autograd.cpp),
  // and the twins without autograd kernels must not record the in-place
  // steps on their fresh results either.
  at::AutoDispatchBelowADInplaceOrView guard;
  // Refuse rather than crash.
  TORCH_CHECK(!(p.transposed && transposed_convolution_crashes(input)),
              "torchflip.conv_transpose: bfloat16 inputs of 2^31 elements or "
              "more are not supported on CPU (ATen's kernel crashes on them); "
              "split the batch or use float32");
  if (input.is_complex()) return complex_convolution(input, weight, bias, p);
  return real_convolution(input, weight, bias, p);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> true_convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, const ConvParams& p,
    std::array<bool, 3> output_mask) {
  at::AutoDispatchBelowADInplaceOrView guard;  // as in true_convolution
  if (input.is_complex()) {
    return complex_convolution_backward(grad_output, input, weight, p,
                                        output_mask);
  }
  return real_convolution_backward(grad_output, input, weight, p, output_mask);
}

}  // namespace torchflip::detail
