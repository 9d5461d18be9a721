// Autocast kernels: under torch.autocast the convolution ops follow the
// lower-precision policy of torch.nn's convolutions (CPU: bfloat16 by default,
// CUDA: float16): floating-point arguments other than float64 are cast to the
// autocast dtype, and the op is redispatched below autocast.
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "ops.h"

// Declared in <ATen/autocast_mode.h>, which pulls in every ATen operator and
// triples this file's compile time; these two exported functions are all that
// is needed from it.
namespace at::autocast {
TORCH_API at::ScalarType get_autocast_dtype(at::DeviceType device_type);
TORCH_API at::Tensor cached_cast(at::ScalarType to_type, const at::Tensor& arg,
                                 c10::DeviceType device_type);
}  // namespace at::autocast

namespace torchflip::detail {
namespace {

template <c10::DeviceType device, c10::DispatchKey key>
struct Autocast {
  static at::Tensor cast(const at::Tensor& t) {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(device), t, device);
  }
  static std::optional<at::Tensor> cast(const std::optional<at::Tensor>& t) {
    if (!t.has_value()) return std::nullopt;
    return cast(*t);
  }

  static at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias,
                         c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                         c10::SymIntArrayRef dilation, c10::SymInt groups) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(key);
    return ops::conv(cast(input), cast(weight), cast(bias), stride, padding,
                     dilation, groups);
  }

  static at::Tensor conv_transpose(
      const at::Tensor& input, const at::Tensor& weight,
      const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
      c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
      c10::SymInt groups, c10::SymIntArrayRef dilation) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(key);
    return ops::conv_transpose(cast(input), cast(weight), cast(bias), stride,
                               padding, output_padding, groups, dilation);
  }
};

using CPU = Autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU>;
using CUDA = Autocast<c10::DeviceType::CUDA, c10::DispatchKey::AutocastCUDA>;
using XPU = Autocast<c10::DeviceType::XPU, c10::DispatchKey::AutocastXPU>;

}  // namespace

TORCH_LIBRARY_IMPL(torchflip, AutocastCPU, m) {
  m.impl("conv", &CPU::conv);
  m.impl("conv_transpose", &CPU::conv_transpose);
}
TORCH_LIBRARY_IMPL(torchflip, AutocastCUDA, m) {
  m.impl("conv", &CUDA::conv);
  m.impl("conv_transpose", &CUDA::conv_transpose);
}
TORCH_LIBRARY_IMPL(torchflip, AutocastXPU, m) {
  m.impl("conv", &XPU::conv);
  m.impl("conv_transpose", &XPU::conv_transpose);
}

}  // namespace torchflip::detail
