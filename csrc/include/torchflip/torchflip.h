// Public C++ API of torchflip: true (kernel-flipped) convolution for libtorch.
//
// For a kernel w of length K along each spatial dimension,
//   cross-correlation (torch::conv1d):  y[i] = sum_k x[i + k] * w[k]
//   true convolution (torchflip):       y[i] = sum_k x[i + k] * w[K - 1 - k]
// so torchflip::conv(x, w, ...) == torch::convolution(x, w.flip(spatial), ...)
// for every stride, padding, dilation and groups.
//
// Every function goes through the PyTorch dispatcher, so autograd (including
// double backward), autocast and every ATen device work from C++ as they do
// from Python. Link against the torchflip shared library (CMake target
// torchflip::torchflip) so that the operators are registered.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace torchflip {

// True convolution over 1, 2 or 3 spatial dimensions (weight.dim() - 2).
// input: (N, C_in, *spatial); weight: (C_out, C_in / groups, *kernel).
// stride, padding and dilation hold one value per spatial dimension, or a
// single value used for all of them.
at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups);

// Gradients of conv with respect to (input, weight, bias), computing only the
// entries whose output_mask is true; the others are undefined tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, std::array<bool, 3> output_mask);

// Transposed true convolution: the adjoint of conv with the same weight and
// hyper-parameters. weight: (C_in, C_out / groups, *kernel), as in
// torch::conv_transpose2d; equals torch's transposed convolution with the
// spatially flipped weight.
at::Tensor conv_transpose(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding,
                          at::IntArrayRef output_padding, int64_t groups,
                          at::IntArrayRef dilation);

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef output_padding, int64_t groups, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask);

// Convenience wrappers with torch::nn::functional's argument order and
// defaults. Inputs must be batched: (N, C, *spatial).
at::Tensor conv1d(const at::Tensor& input, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias = std::nullopt,
                  at::IntArrayRef stride = 1, at::IntArrayRef padding = 0,
                  at::IntArrayRef dilation = 1, int64_t groups = 1);
at::Tensor conv2d(const at::Tensor& input, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias = std::nullopt,
                  at::IntArrayRef stride = 1, at::IntArrayRef padding = 0,
                  at::IntArrayRef dilation = 1, int64_t groups = 1);
at::Tensor conv3d(const at::Tensor& input, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias = std::nullopt,
                  at::IntArrayRef stride = 1, at::IntArrayRef padding = 0,
                  at::IntArrayRef dilation = 1, int64_t groups = 1);

at::Tensor conv_transpose1d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias = std::nullopt,
                            at::IntArrayRef stride = 1,
                            at::IntArrayRef padding = 0,
                            at::IntArrayRef output_padding = 0,
                            int64_t groups = 1, at::IntArrayRef dilation = 1);
at::Tensor conv_transpose2d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias = std::nullopt,
                            at::IntArrayRef stride = 1,
                            at::IntArrayRef padding = 0,
                            at::IntArrayRef output_padding = 0,
                            int64_t groups = 1, at::IntArrayRef dilation = 1);
at::Tensor conv_transpose3d(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias = std::nullopt,
                            at::IntArrayRef stride = 1,
                            at::IntArrayRef padding = 0,
                            at::IntArrayRef output_padding = 0,
                            int64_t groups = 1, at::IntArrayRef dilation = 1);

}  // namespace torchflip
