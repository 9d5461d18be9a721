#include "true_convolution.h"

#include <limits>

#include <ATen/ops/complex.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/imag.h>
#include <ATen/ops/real.h>

namespace torchflip::detail {
namespace {

// The weight reversed along its spatial dimensions. A dimension of size 1 is
// its own reversal, so it is skipped; a 1x1 kernel is then used as it is, and
// pointwise convolutions cost exactly what torch's do.
at::Tensor flip_spatial(const at::Tensor& weight) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < weight.dim(); ++d) {
    if (weight.sym_size(d) != 1) dims.push_back(d);
  }
  return dims.empty() ? weight : weight.flip(dims);
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

at::Tensor real_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const ConvParams& p) {
  return at::convolution_symint(input, flip_spatial(weight), bias, p.stride,
                                p.padding, p.dilation, p.transposed,
                                p.output_padding, p.groups);
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
  auto [grad_input, grad_weight, grad_bias] =
      at::convolution_backward_symint(
          grad_output, input, flip_spatial(weight),
          bias_sizes ? at::OptionalSymIntArrayRef(*bias_sizes) : std::nullopt,
          p.stride, p.padding, p.dilation, p.transposed, p.output_padding,
          p.groups, output_mask);
  // Some ATen backends compute a gradient nobody asked for (CPU returns
  // grad_weight whenever grad_bias is requested); the mask is the contract.
  if (!output_mask[0]) grad_input = at::Tensor();
  if (!output_mask[1]) grad_weight = at::Tensor();
  if (!output_mask[2]) grad_bias = at::Tensor();
  // ATen returns the gradient of the flipped weight it was given; flipping it
  // back gives the gradient of the weight the caller holds.
  if (grad_weight.defined()) grad_weight = flip_spatial(grad_weight);
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
  // ATen 2.13's CPU (oneDNN) bfloat16 transposed convolution crashes the
  // process on inputs of 2^31 elements or more; refuse rather than crash.
  TORCH_CHECK(!(p.transposed && input.device().is_cpu() &&
                input.scalar_type() == at::kBFloat16 &&
                input.sym_numel() >= std::numeric_limits<int32_t>::max()),
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
  if (input.is_complex()) {
    return complex_convolution_backward(grad_output, input, weight, p,
                                        output_mask);
  }
  return real_convolution_backward(grad_output, input, weight, p, output_mask);
}

}  // namespace torchflip::detail
