// Argument validation and normalisation shared by every torchflip convolution
// operator. The compiled ops validate their own arguments so that C++ users
// and direct torch.ops.torchflip callers get the same clear errors as the
// Python API.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

namespace torchflip::detail {

// Hyper-parameters of a true convolution, expanded to one entry per spatial
// dimension.
struct ConvParams {
  c10::SymDimVector stride;
  c10::SymDimVector padding;
  c10::SymDimVector dilation;
  c10::SymDimVector output_padding;  // all zeros unless transposed
  c10::SymInt groups;
  bool transposed = false;
};

// The spatial dimensions of a tensor of rank `dim`: {2, ..., dim - 1}.
std::vector<int64_t> spatial_dims(int64_t dim);

// Validates input, weight and bias against the hyper-parameters and returns
// them expanded per spatial dimension. `output_padding` is ignored unless
// `transposed`. `op` names the operator in error messages.
ConvParams check_conv_args(const char* op, const at::Tensor& input,
                           const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           c10::SymIntArrayRef stride,
                           c10::SymIntArrayRef padding,
                           c10::SymIntArrayRef dilation,
                           c10::SymIntArrayRef output_padding,
                           const c10::SymInt& groups, bool transposed);

// The shape of the forward output for validated arguments.
c10::SymDimVector conv_output_shape(const at::Tensor& input,
                                    const at::Tensor& weight,
                                    const ConvParams& params);

// Validates the arguments of a backward op: those of the forward op, plus a
// grad_output whose shape is the forward output's.
ConvParams check_conv_backward_args(
    const char* op, const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    c10::SymIntArrayRef output_padding, const c10::SymInt& groups,
    bool transposed);

}  // namespace torchflip::detail
