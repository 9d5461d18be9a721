// Autocast kernels: under torch.autocast the convolution ops follow the
// lower-precision policy of torch.nn's convolutions (CPU: bfloat16 by default,
// CUDA: float16): floating-point arguments other than float64 are cast to the
// autocast dtype, and the op is redispatched below autocast.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include "ops.h"

namespace torchflip::detail {
namespace {

template <c10::DeviceType device, c10::DispatchKey key>
struct Autocast {
  static at::Tensor cast(const at::Tensor& t) {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(device), t, device);
  }
  static std::optional<at::Tensor> cast(const std::optional<at::Tensor>& t) {
    return at::autocast::cached_cast(at::autocast::get_autocast_dtype(device), t, device);
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
