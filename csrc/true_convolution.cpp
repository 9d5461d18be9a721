#include "true_convolution.h"

namespace torchflip::detail {

at::Tensor true_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const ConvParams& p) {
  return at::convolution_symint(input, weight.flip(spatial_dims(weight.dim())),
                                bias, p.stride, p.padding, p.dilation,
                                p.transposed, p.output_padding, p.groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> true_convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, const ConvParams& p,
    std::array<bool, 3> output_mask) {
  const auto dims = spatial_dims(weight.dim());
  std::optional<c10::SymDimVector> bias_sizes;
  if (output_mask[2]) {
    bias_sizes = c10::SymDimVector{p.transposed ? weight.sym_size(1) * p.groups
                                                : weight.sym_size(0)};
  }
  auto [grad_input, grad_weight, grad_bias] =
      at::convolution_backward_symint(
          grad_output, input, weight.flip(dims),
          bias_sizes ? at::OptionalSymIntArrayRef(*bias_sizes) : std::nullopt,
          p.stride, p.padding, p.dilation, p.transposed, p.output_padding,
          p.groups, output_mask);
  // ATen returns the gradient of the flipped weight it was given; flipping it
  // back gives the gradient of the weight the caller holds.
  if (grad_weight.defined()) grad_weight = grad_weight.flip(dims);
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace torchflip::detail
