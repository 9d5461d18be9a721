// The C++ API declared in include/torchflip/torchflip.h.
#include <torchflip/torchflip.h>

#include "ops.h"

namespace torchflip {
namespace {
c10::SymIntArrayRef sym(at::IntArrayRef values) {
  return c10::fromIntArrayRefSlow(values);
}
}  // namespace

at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups) {
  return ops::conv(input, weight, bias, sym(stride), sym(padding),
                   sym(dilation), groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, std::array<bool, 3> output_mask) {
  return ops::conv_backward(grad_output, input, weight, sym(stride),
                            sym(padding), sym(dilation), groups, output_mask);
}

at::Tensor conv_transpose(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding,
                          at::IntArrayRef output_padding, int64_t groups,
                          at::IntArrayRef dilation) {
  return ops::conv_transpose(input, weight, bias, sym(stride), sym(padding),
                             sym(output_padding), groups, sym(dilation));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef output_padding, int64_t groups, at::IntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  return ops::conv_transpose_backward(grad_output, input, weight, sym(stride),
                                      sym(padding), sym(output_padding),
                                      groups, sym(dilation), output_mask);
}

#define TORCHFLIP_CONV_ND(name, N)                                            \
  at::Tensor name(const at::Tensor& input, const at::Tensor& weight,          \
                  const std::optional<at::Tensor>& bias,                      \
                  at::IntArrayRef stride, at::IntArrayRef padding,            \
                  at::IntArrayRef dilation, int64_t groups) {                 \
    TORCH_CHECK_VALUE(weight.dim() == (N) + 2, "torchflip::" #name            \
                      ": expected 'weight' with ",                            \
                      (N) + 2, " dimensions, but got ", weight.dim());        \
    return conv(input, weight, bias, stride, padding, dilation, groups);      \
  }
TORCHFLIP_CONV_ND(conv1d, 1)
TORCHFLIP_CONV_ND(conv2d, 2)
TORCHFLIP_CONV_ND(conv3d, 3)
#undef TORCHFLIP_CONV_ND

#define TORCHFLIP_CONV_TRANSPOSE_ND(name, N)                                 \
  at::Tensor name(const at::Tensor& input, const at::Tensor& weight,         \
                  const std::optional<at::Tensor>& bias,                     \
                  at::IntArrayRef stride, at::IntArrayRef padding,           \
                  at::IntArrayRef output_padding, int64_t groups,            \
                  at::IntArrayRef dilation) {                                \
    TORCH_CHECK_VALUE(weight.dim() == (N) + 2, "torchflip::" #name           \
                      ": expected 'weight' with ",                           \
                      (N) + 2, " dimensions, but got ", weight.dim());       \
    return conv_transpose(input, weight, bias, stride, padding,              \
                          output_padding, groups, dilation);                 \
  }
TORCHFLIP_CONV_TRANSPOSE_ND(conv_transpose1d, 1)
TORCHFLIP_CONV_TRANSPOSE_ND(conv_transpose2d, 2)
TORCHFLIP_CONV_TRANSPOSE_ND(conv_transpose3d, 3)
#undef TORCHFLIP_CONV_TRANSPOSE_ND

}  // namespace torchflip
