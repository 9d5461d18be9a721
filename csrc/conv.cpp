// torchflip::conv and torchflip::conv_backward: true convolution and its
// gradients. Registered at CompositeExplicitAutograd, so the same ATen code
// serves CPU, CUDA, Meta (shape inference for FakeTensor and torch.compile)
// and every other backend.
#include <torch/library.h>

#include "conv_args.h"
#include "true_convolution.h"

namespace torchflip::detail {
namespace {

at::Tensor conv_kernel(const at::Tensor& input, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias,
                       c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                       c10::SymIntArrayRef dilation, c10::SymInt groups) {
  const ConvParams p =
      check_conv_args("torchflip.conv", input, weight, bias, stride, padding,
                      dilation, {}, groups, /*transposed=*/false);
  return true_convolution(input, weight, bias, p);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    c10::SymInt groups, std::array<bool, 3> output_mask) {
  const ConvParams p = check_conv_backward_args(
      "torchflip.conv_backward", grad_output, input, weight, stride, padding,
      dilation, {}, groups, /*transposed=*/false);
  return true_convolution_backward(grad_output, input, weight, p, output_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(torchflip, CompositeExplicitAutograd, m) {
  m.impl("conv", &conv_kernel);
  m.impl("conv_backward", &conv_backward_kernel);
  m.impl("_conv", &conv_kernel);
  m.impl("_conv_backward", &conv_backward_kernel);
}

}  // namespace torchflip::detail
