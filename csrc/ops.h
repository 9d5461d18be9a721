// Typed calls of the public torchflip operators through the dispatcher, so
// that callers (the autograd kernels, the C++ API) get autograd, autocast and
// device dispatch exactly as a call from Python would.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <tuple>

namespace torchflip::ops {

at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const std::optional<at::Tensor>& bias,
                c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                c10::SymIntArrayRef dilation, const c10::SymInt& groups);

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    const c10::SymInt& groups, std::array<bool, 3> output_mask);

at::Tensor conv_transpose(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride,
                          c10::SymIntArrayRef padding,
                          c10::SymIntArrayRef output_padding,
                          const c10::SymInt& groups,
                          c10::SymIntArrayRef dilation);

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    const c10::SymInt& groups, c10::SymIntArrayRef dilation,
    std::array<bool, 3> output_mask);

}  // namespace torchflip::ops
