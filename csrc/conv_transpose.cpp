// torchflip::conv_transpose and torchflip::conv_transpose_backward: the
// adjoint of true convolution and its gradients. Registered at
// CompositeExplicitAutograd, like conv.cpp.
#include <torch/library.h>

#include "conv_args.h"
#include "true_convolution.h"

namespace torchflip::detail {
namespace {

at::Tensor conv_transpose_kernel(
    const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    c10::SymInt groups, c10::SymIntArrayRef dilation) {
  const ConvParams p = check_conv_args(
      "torchflip.conv_transpose", input, weight, bias, stride, padding,
      dilation, output_padding, groups, /*transposed=*/true);
  return true_convolution(input, weight, bias, p);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    c10::SymInt groups, c10::SymIntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  const ConvParams p = check_conv_backward_args(
      "torchflip.conv_transpose_backward", grad_output, input, weight, stride,
      padding, dilation, output_padding, groups, /*transposed=*/true);
  return true_convolution_backward(grad_output, input, weight, p, output_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(torchflip, CompositeExplicitAutograd, m) {
  m.impl("conv_transpose", &conv_transpose_kernel);
  m.impl("conv_transpose_backward", &conv_transpose_backward_kernel);
  m.impl("_conv_transpose", &conv_transpose_kernel);
  m.impl("_conv_transpose_backward", &conv_transpose_backward_kernel);
}

}  // namespace torchflip::detail
