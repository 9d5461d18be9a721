#include "true_convolution.h"

#include <limits>

#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>

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
  return at::convolution_symint(input, flip_spatial(weight),
                                bias, p.stride, p.padding, p.dilation,
                                p.transposed, p.output_padding, p.groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> true_convolution_backward(
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

}  // namespace torchflip::detail
