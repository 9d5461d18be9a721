#include "conv_args.h"

#include <limits>
#include <sstream>
#include <utility>

namespace torchflip::detail {
namespace {

std::string shape_str(c10::SymIntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    out << (i ? ", " : "") << sizes[i];
  }
  out << "]";
  return out.str();
}

// torch accepts a single value for every spatial dimension or one per
// dimension; anything else is an error rather than a silent broadcast.
c10::SymDimVector expand_param(const char* op, const char* name,
                               c10::SymIntArrayRef values, int64_t dims) {
  TORCH_CHECK_VALUE(
      values.size() == 1 || static_cast<int64_t>(values.size()) == dims, op,
      ": expected '", name, "' to have 1 or ", dims, " values for a ", dims,
      "-D convolution, but got ", name, "=", shape_str(values), " with ",
      values.size(), " values");
  c10::SymDimVector out;
  for (int64_t i = 0; i < dims; ++i) {
    out.push_back(values.size() == 1 ? values[0] : values[i]);
  }
  return out;
}

void check_dtype_and_device(const char* op, const char* name,
                            const at::Tensor& t, const at::Tensor& input) {
  TORCH_CHECK_TYPE(t.scalar_type() == input.scalar_type(), op,
                   ": expected '", name, "' to have the dtype of 'input' (",
                   input.scalar_type(), "), but got ", t.scalar_type());
  TORCH_CHECK(t.device() == input.device(), op, ": expected '", name,
              "' to be on the device of 'input' (", input.device(),
              "), but got ", t.device());
}

}  // namespace

std::vector<int64_t> spatial_dims(int64_t dim) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < dim; ++d) dims.push_back(d);
  return dims;
}

ConvParams check_conv_args(const char* op, const at::Tensor& input,
                           const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           c10::SymIntArrayRef stride,
                           c10::SymIntArrayRef padding,
                           c10::SymIntArrayRef dilation,
                           c10::SymIntArrayRef output_padding,
                           const c10::SymInt& groups, bool transposed) {
  TORCH_CHECK(input.defined(), op, ": 'input' is an undefined tensor");
  TORCH_CHECK(weight.defined(), op, ": 'weight' is an undefined tensor");
  const int64_t wdim = weight.dim();
  const char* weight_layout = transposed ? "(C_in, C_out / groups, *kernel)"
                                         : "(C_out, C_in / groups, *kernel)";
  TORCH_CHECK_VALUE(wdim >= 3 && wdim <= 5, op,
                    ": expected 'weight' of shape ", weight_layout,
                    " with 3, 4 or 5 dimensions, but got weight of shape ",
                    shape_str(weight.sym_sizes()));
  const int64_t dims = wdim - 2;
  TORCH_CHECK_VALUE(
      input.dim() == wdim, op, ": expected 'input' of shape (N, C_in, ",
      "*spatial) with ", wdim, " dimensions for a ", dims,
      "-D convolution (the rank of 'weight'), but got input of shape ",
      shape_str(input.sym_sizes()));

  const auto dtype = input.scalar_type();
  // Real dtypes go to ATen, which accepts or rejects them exactly as it does
  // for torch.nn (integers run on CPU, bool is rejected). Complex tensors are
  // split into real convolutions, as torch.nn splits them.
  TORCH_CHECK_TYPE(dtype != at::kBool, op,
                   ": expected a numeric 'input' (floating-point or integer), "
                   "but got ", dtype);
  check_dtype_and_device(op, "weight", weight, input);

  ConvParams p;
  p.transposed = transposed;
  p.stride = expand_param(op, "stride", stride, dims);
  p.padding = expand_param(op, "padding", padding, dims);
  p.dilation = expand_param(op, "dilation", dilation, dims);
  if (transposed) {
    p.output_padding = expand_param(op, "output_padding", output_padding, dims);
  } else {
    p.output_padding = c10::SymDimVector(dims, c10::SymInt(0));
  }
  p.groups = groups;

  // Larger values are never meaningful and would overflow the output-size
  // arithmetic (int64), turning a nonsense call into a plausible shape.
  constexpr int64_t kMaxParam = std::numeric_limits<int32_t>::max();
  for (int64_t i = 0; i < dims; ++i) {
    for (const auto& [name, value] :
         {std::pair<const char*, c10::SymInt>{"stride", p.stride[i]},
          {"padding", p.padding[i]},
          {"dilation", p.dilation[i]},
          {"output_padding", p.output_padding[i]}}) {
      TORCH_CHECK_VALUE(value <= kMaxParam, op, ": expected every '", name,
                        "' value to be at most ", kMaxParam, ", but got ",
                        name, "=", value);
    }
  }
  for (int64_t i = 0; i < dims; ++i) {
    TORCH_CHECK_VALUE(p.stride[i] > 0, op,
                      ": expected every 'stride' value to be positive, but "
                      "got stride=",
                      shape_str(stride));
    TORCH_CHECK_VALUE(p.dilation[i] > 0, op,
                      ": expected every 'dilation' value to be positive, but "
                      "got dilation=",
                      shape_str(dilation));
    TORCH_CHECK_VALUE(p.padding[i] >= 0, op,
                      ": expected every 'padding' value to be non-negative, "
                      "but got padding=",
                      shape_str(padding));
    if (transposed) {
      TORCH_CHECK_VALUE(
          p.output_padding[i] >= 0 &&
              (p.output_padding[i] < p.stride[i] ||
               p.output_padding[i] < p.dilation[i]),
          op,
          ": expected every 'output_padding' value to be non-negative and "
          "smaller than its stride or its dilation, but got output_padding=",
          shape_str(output_padding), " with stride=", shape_str(p.stride),
          " and dilation=", shape_str(p.dilation));
    }
  }

  TORCH_CHECK_VALUE(groups > 0, op,
                    ": expected 'groups' to be positive, but got groups=",
                    groups);
  const c10::SymInt in_channels = input.sym_size(1);
  if (transposed) {
    // weight: (C_in, C_out / groups, *kernel)
    TORCH_CHECK_VALUE(weight.sym_size(0) == in_channels, op,
                      ": expected 'weight' of shape ", weight_layout,
                      " with C_in=", in_channels,
                      " (the channels of 'input'), but got weight of shape ",
                      shape_str(weight.sym_sizes()));
    TORCH_CHECK_VALUE(in_channels % groups == 0, op, ": 'groups'=", groups,
                      " must divide the input channels C_in=", in_channels);
  } else {
    // weight: (C_out, C_in / groups, *kernel)
    TORCH_CHECK_VALUE(in_channels % groups == 0, op, ": 'groups'=", groups,
                      " must divide the input channels C_in=", in_channels,
                      " of 'input' of shape ", shape_str(input.sym_sizes()));
    TORCH_CHECK_VALUE(weight.sym_size(0) % groups == 0, op, ": 'groups'=",
                      groups, " must divide the output channels C_out=",
                      weight.sym_size(0), " of 'weight' of shape ",
                      shape_str(weight.sym_sizes()));
    TORCH_CHECK_VALUE(weight.sym_size(1) * groups == in_channels, op,
                      ": expected 'weight' of shape ", weight_layout,
                      " with C_in / groups=", in_channels / groups,
                      " (input channels ", in_channels, ", groups ", groups,
                      "), but got weight of shape ",
                      shape_str(weight.sym_sizes()));
  }
  const c10::SymInt out_channels =
      transposed ? weight.sym_size(1) * groups : weight.sym_size(0);

  if (bias.has_value() && bias->defined()) {
    check_dtype_and_device(op, "bias", *bias, input);
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->sym_size(0) == out_channels,
                      op, ": expected 'bias' of shape [", out_channels,
                      "] (the output channels), but got bias of shape ",
                      shape_str(bias->sym_sizes()));
  }

  for (int64_t i = 0; i < dims; ++i) {
    const c10::SymInt kernel = weight.sym_size(2 + i);
    TORCH_CHECK_VALUE(kernel > 0, op,
                      ": expected a non-empty kernel, but got weight of shape ",
                      shape_str(weight.sym_sizes()));
    if (!transposed) {
      const c10::SymInt extent = p.dilation[i] * (kernel - 1) + 1;
      const c10::SymInt padded = input.sym_size(2 + i) + 2 * p.padding[i];
      TORCH_CHECK_VALUE(
          padded >= extent, op, ": the kernel is larger than the padded input",
          " in spatial dimension ", i, ": dilated kernel size ", extent,
          " > padded input size ", padded, " (input of shape ",
          shape_str(input.sym_sizes()), ", padding=", shape_str(p.padding),
          ")");
    }
  }
  if (transposed) {
    const auto out_shape = conv_output_shape(input, weight, p);
    for (int64_t i = 0; i < dims; ++i) {
      TORCH_CHECK_VALUE(out_shape[2 + i] >= 0, op,
                        ": the output size would be negative in spatial "
                        "dimension ", i,
                        ": computed output shape ", shape_str(out_shape),
                        " from input of shape ", shape_str(input.sym_sizes()),
                        " and padding=", shape_str(p.padding));
    }
  }
  return p;
}

c10::SymDimVector conv_output_shape(const at::Tensor& input,
                                    const at::Tensor& weight,
                                    const ConvParams& p) {
  const int64_t dims = weight.dim() - 2;
  c10::SymDimVector shape;
  shape.push_back(input.sym_size(0));
  shape.push_back(p.transposed ? weight.sym_size(1) * p.groups
                               : weight.sym_size(0));
  for (int64_t i = 0; i < dims; ++i) {
    const c10::SymInt in = input.sym_size(2 + i);
    const c10::SymInt extent = p.dilation[i] * (weight.sym_size(2 + i) - 1);
    if (p.transposed) {
      shape.push_back((in - 1) * p.stride[i] - 2 * p.padding[i] + extent +
                      p.output_padding[i] + 1);
    } else {
      shape.push_back((in + 2 * p.padding[i] - extent - 1) / p.stride[i] + 1);
    }
  }
  return shape;
}

ConvParams check_conv_backward_args(
    const char* op, const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    c10::SymIntArrayRef output_padding, const c10::SymInt& groups,
    bool transposed) {
  ConvParams p =
      check_conv_args(op, input, weight, std::nullopt, stride, padding,
                      dilation, output_padding, groups, transposed);
  TORCH_CHECK(grad_output.defined(), op,
              ": 'grad_output' is an undefined tensor");
  TORCH_CHECK_VALUE(grad_output.dim() == input.dim(), op,
                    ": expected 'grad_output' with ", input.dim(),
                    " dimensions (the forward output's), but got grad_output "
                    "of shape ", shape_str(grad_output.sym_sizes()));
  check_dtype_and_device(op, "grad_output", grad_output, input);
  const auto expected = conv_output_shape(input, weight, p);
  // With no input channels ATen's forward returns the (empty) input shape
  // rather than the formula's; only the rank is checked there.
  const bool empty_channels = input.sym_size(1) == 0;
  TORCH_CHECK_VALUE(empty_channels || grad_output.sym_sizes() == c10::SymIntArrayRef(expected),
                    op, ": expected 'grad_output' of shape ",
                    shape_str(expected),
                    " (the forward output's), but got grad_output of shape ",
                    shape_str(grad_output.sym_sizes()));
  return p;
}

}  // namespace torchflip::detail
