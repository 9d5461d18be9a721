#include "ops.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace torchflip::ops {
namespace {

using ForwardSig = at::Tensor(const at::Tensor&, const at::Tensor&,
                              const std::optional<at::Tensor>&,
                              c10::SymIntArrayRef, c10::SymIntArrayRef,
                              c10::SymIntArrayRef, c10::SymInt);
using BackwardSig = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&,
    c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymIntArrayRef,
    c10::SymInt, std::array<bool, 3>);
using TransposeSig = at::Tensor(const at::Tensor&, const at::Tensor&,
                                const std::optional<at::Tensor>&,
                                c10::SymIntArrayRef, c10::SymIntArrayRef,
                                c10::SymIntArrayRef, c10::SymInt,
                                c10::SymIntArrayRef);
using TransposeBackwardSig = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&,
    c10::SymIntArrayRef, c10::SymIntArrayRef, c10::SymIntArrayRef,
    c10::SymInt, c10::SymIntArrayRef, std::array<bool, 3>);

template <typename Sig>
c10::TypedOperatorHandle<Sig> handle(const char* name) {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow(name, "")
      .template typed<Sig>();
}

}  // namespace

at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const std::optional<at::Tensor>& bias,
                c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                c10::SymIntArrayRef dilation, const c10::SymInt& groups) {
  static auto op = handle<ForwardSig>("torchflip::conv");
  return op.call(input, weight, bias, stride, padding, dilation, groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    const c10::SymInt& groups, std::array<bool, 3> output_mask) {
  static auto op = handle<BackwardSig>("torchflip::conv_backward");
  return op.call(grad_output, input, weight, stride, padding, dilation, groups,
                 output_mask);
}

at::Tensor conv_transpose(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias,
                          c10::SymIntArrayRef stride,
                          c10::SymIntArrayRef padding,
                          c10::SymIntArrayRef output_padding,
                          const c10::SymInt& groups,
                          c10::SymIntArrayRef dilation) {
  static auto op = handle<TransposeSig>("torchflip::conv_transpose");
  return op.call(input, weight, bias, stride, padding, output_padding, groups,
                 dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    const c10::SymInt& groups, c10::SymIntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  static auto op =
      handle<TransposeBackwardSig>("torchflip::conv_transpose_backward");
  return op.call(grad_output, input, weight, stride, padding, output_padding,
                 groups, dilation, output_mask);
}

}  // namespace torchflip::ops
