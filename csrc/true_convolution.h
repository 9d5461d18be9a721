// The ATen implementation of true convolution, shared by every operator.
//
// A true convolution is the cross-correlation with the spatially flipped
// kernel, so each kernel flips the weight (or, where they are smaller and the
// windows allow it, the activations; see true_convolution.cpp) and calls
// ATen's convolution (or its backward), which dispatches to the fastest
// backend for the device (oneDNN, cuDNN, MIOpen, ...). The flip costs far
// less than the convolution.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <tuple>

#include "conv_args.h"

namespace torchflip::detail {

at::Tensor true_convolution(const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const ConvParams& params);

// (grad_input, grad_weight, grad_bias); entries whose output_mask is false
// are undefined tensors and cost nothing.
std::tuple<at::Tensor, at::Tensor, at::Tensor> true_convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, const ConvParams& params,
    std::array<bool, 3> output_mask);

}  // namespace torchflip::detail
