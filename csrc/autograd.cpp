// Autograd kernels of the public operators, written in C++ so that gradients
// of every order work for libtorch users as well as from Python.
//
// conv and conv_transpose are bilinear in (input, weight), so their backward
// ops are bilinear too, and the backward of a backward is again made of the
// forward and backward ops. Both autograd functions therefore call the public
// ops through the dispatcher, and derivatives of any order follow.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops.h"

namespace torchflip::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The hyper-parameters of conv or conv_transpose, so that one pair of autograd
// functions serves both operators.
struct Hyper {
  std::vector<c10::SymInt> stride, padding, dilation, output_padding;
  c10::SymInt groups;
  bool transposed = false;

  void save(AutogradContext* ctx) const {
    ctx->saved_data["stride"] = c10::SymIntArrayRef(stride);
    ctx->saved_data["padding"] = c10::SymIntArrayRef(padding);
    ctx->saved_data["dilation"] = c10::SymIntArrayRef(dilation);
    ctx->saved_data["output_padding"] = c10::SymIntArrayRef(output_padding);
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["transposed"] = transposed;
  }

  static Hyper load(AutogradContext* ctx) {
    Hyper h;
    h.stride = ctx->saved_data["stride"].toSymIntVector();
    h.padding = ctx->saved_data["padding"].toSymIntVector();
    h.dilation = ctx->saved_data["dilation"].toSymIntVector();
    h.output_padding = ctx->saved_data["output_padding"].toSymIntVector();
    h.groups = ctx->saved_data["groups"].toSymInt();
    h.transposed = ctx->saved_data["transposed"].toBool();
    return h;
  }

  at::Tensor forward(const at::Tensor& input, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias) const {
    if (transposed) {
      return ops::conv_transpose(input, weight, bias, stride, padding,
                                 output_padding, groups, dilation);
    }
    return ops::conv(input, weight, bias, stride, padding, dilation, groups);
  }

  std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
      const at::Tensor& grad_output, const at::Tensor& input,
      const at::Tensor& weight, std::array<bool, 3> mask) const {
    if (transposed) {
      return ops::conv_transpose_backward(grad_output, input, weight, stride,
                                          padding, output_padding, groups,
                                          dilation, mask);
    }
    return ops::conv_backward(grad_output, input, weight, stride, padding,
                              dilation, groups, mask);
  }
};

// Whether autograd has nothing to record for these operands: grad mode off or
// no operand requiring grad, and no forward-mode tangent. The kernels then
// call the operators below autograd directly, as ATen's generated autograd
// kernels do, instead of building an autograd::Function node that nothing
// uses. That node cost about 15 us per training step on every layer, since
// backward runs conv_backward with grad mode off. Tangents keep the Function
// path, which rejects forward-mode AD with a clear error.
bool untracked(std::initializer_list<const at::Tensor*> operands) {
  const bool recording = at::GradMode::is_enabled();
  for (const at::Tensor* t : operands) {
    if (!t->defined()) continue;
    if (recording && t->requires_grad()) return false;
    if (t->_fw_grad(/*level=*/0).defined()) return false;
  }
  return true;
}

const at::Tensor& or_undefined(const std::optional<at::Tensor>& t) {
  static const at::Tensor undefined;
  return t.has_value() ? *t : undefined;
}

std::vector<c10::SymInt> to_vector(c10::SymIntArrayRef values) {
  return {values.begin(), values.end()};
}

class TrueConvFunction : public torch::autograd::Function<TrueConvFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const Hyper& hyper) {
    at::Tensor output;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      output = hyper.forward(input, weight, bias);
    }
    ctx->save_for_backward({input, weight});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    hyper.save(ctx);
    return output;
  }

  static variable_list backward(AutogradContext* ctx,
                                variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad_output = grad_outputs[0];
    if (!grad_output.defined()) {
      return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const Hyper hyper = Hyper::load(ctx);
    const std::array<bool, 3> mask = {
        ctx->needs_input_grad(0), ctx->needs_input_grad(1),
        ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)};
    auto [grad_input, grad_weight, grad_bias] =
        hyper.backward(grad_output, saved[0], saved[1], mask);
    return {grad_input, grad_weight, grad_bias, at::Tensor()};
  }
};

class TrueConvBackwardFunction
    : public torch::autograd::Function<TrueConvBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx,
                               const at::Tensor& grad_output,
                               const at::Tensor& input,
                               const at::Tensor& weight, const Hyper& hyper,
                               std::array<bool, 3> mask) {
    std::tuple<at::Tensor, at::Tensor, at::Tensor> grads;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      grads = hyper.backward(grad_output, input, weight, mask);
    }
    ctx->save_for_backward({grad_output, input, weight});
    hyper.save(ctx);
    // A C++ autograd::Function cannot return undefined tensors, so only the
    // requested gradients pass through it; the caller puts them back in place.
    ctx->saved_data["mask"] = c10::List<bool>({mask[0], mask[1], mask[2]});
    variable_list outputs;
    for (const auto& t : {std::get<0>(grads), std::get<1>(grads),
                          std::get<2>(grads)}) {
      if (t.defined()) outputs.push_back(t);
    }
    return outputs;
  }

  // With gi = A_w^T g, gw = B_x^T g and gb = sum(g), where A_w x = B_x w =
  // forward(x, w) is bilinear, the vector-Jacobian products with upstream
  // gradients (ggi, ggw, ggb) are
  //   d/dg = forward(ggi, w) + forward(x, ggw) + ggb,
  //   d/dx = backward(g, x, ggw).grad_input,
  //   d/dw = backward(g, ggi, w).grad_weight.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad_output = saved[0];
    const at::Tensor& input = saved[1];
    const at::Tensor& weight = saved[2];
    const auto mask = ctx->saved_data["mask"].toBoolList();
    at::Tensor upstream[3];
    for (size_t i = 0, next = 0; i < 3; ++i) {
      if (mask[i]) upstream[i] = grads[next++];
    }
    const at::Tensor& ggi = upstream[0];
    const at::Tensor& ggw = upstream[1];
    const at::Tensor& ggb = upstream[2];
    const Hyper hyper = Hyper::load(ctx);

    at::Tensor d_grad_output, d_input, d_weight;
    if (ctx->needs_input_grad(0)) {
      if (ggi.defined()) d_grad_output = hyper.forward(ggi, weight, {});
      if (ggw.defined()) {
        auto term = hyper.forward(input, ggw, {});
        d_grad_output =
            d_grad_output.defined() ? d_grad_output.add(term) : term;
      }
      if (ggb.defined()) {
        std::vector<int64_t> shape(grad_output.dim(), 1);
        shape[1] = -1;
        auto term = ggb.reshape(shape).expand_as(grad_output);
        d_grad_output =
            d_grad_output.defined() ? d_grad_output.add(term) : term.clone();
      }
    }
    if (ctx->needs_input_grad(1) && ggw.defined()) {
      d_input =
          std::get<0>(hyper.backward(grad_output, input, ggw, {true, false, false}));
    }
    if (ctx->needs_input_grad(2) && ggi.defined()) {
      d_weight =
          std::get<1>(hyper.backward(grad_output, ggi, weight, {false, true, false}));
    }
    return {d_grad_output, d_input, d_weight, at::Tensor(), at::Tensor()};
  }
};

// Puts the gradients that TrueConvBackwardFunction returned back in the
// positions of output_mask, with undefined tensors elsewhere.
std::tuple<at::Tensor, at::Tensor, at::Tensor> unpack(
    std::array<bool, 3> output_mask, const variable_list& grads) {
  at::Tensor out[3];
  for (size_t i = 0, next = 0; i < 3; ++i) {
    if (output_mask[i]) out[i] = grads[next++];
  }
  return {out[0], out[1], out[2]};
}

void check_defined(const char* op, const at::Tensor& input,
                   const at::Tensor& weight) {
  // The autograd kernel runs before the operator's own checks.
  TORCH_CHECK(input.defined(), op, ": 'input' is an undefined tensor (None)");
  TORCH_CHECK(weight.defined(), op, ": 'weight' is an undefined tensor (None)");
}

at::Tensor conv_autograd(const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias,
                         c10::SymIntArrayRef stride,
                         c10::SymIntArrayRef padding,
                         c10::SymIntArrayRef dilation, c10::SymInt groups) {
  check_defined("torchflip.conv", input, weight);
  if (untracked({&input, &weight, &or_undefined(bias)})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::conv(input, weight, bias, stride, padding, dilation, groups);
  }
  Hyper h{to_vector(stride), to_vector(padding), to_vector(dilation),
          std::vector<c10::SymInt>{c10::SymInt(0)}, groups, false};
  return TrueConvFunction::apply(input, weight, bias, h);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward_autograd(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
    c10::SymInt groups, std::array<bool, 3> output_mask) {
  check_defined("torchflip.conv_backward", input, weight);
  TORCH_CHECK(grad_output.defined(),
              "torchflip.conv_backward: 'grad_output' is an undefined tensor (None)");
  if (untracked({&grad_output, &input, &weight})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::conv_backward(grad_output, input, weight, stride, padding,
                              dilation, groups, output_mask);
  }
  Hyper h{to_vector(stride), to_vector(padding), to_vector(dilation),
          std::vector<c10::SymInt>{c10::SymInt(0)}, groups, false};
  return unpack(output_mask, TrueConvBackwardFunction::apply(
                                 grad_output, input, weight, h, output_mask));
}

at::Tensor conv_transpose_autograd(
    const at::Tensor& input, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    c10::SymInt groups, c10::SymIntArrayRef dilation) {
  check_defined("torchflip.conv_transpose", input, weight);
  if (untracked({&input, &weight, &or_undefined(bias)})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::conv_transpose(input, weight, bias, stride, padding,
                               output_padding, groups, dilation);
  }
  Hyper h{to_vector(stride), to_vector(padding), to_vector(dilation),
          to_vector(output_padding), groups, true};
  return TrueConvFunction::apply(input, weight, bias, h);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_transpose_backward_autograd(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& weight, c10::SymIntArrayRef stride,
    c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
    c10::SymInt groups, c10::SymIntArrayRef dilation,
    std::array<bool, 3> output_mask) {
  check_defined("torchflip.conv_transpose_backward", input, weight);
  TORCH_CHECK(grad_output.defined(),
              "torchflip.conv_transpose_backward: 'grad_output' is an undefined tensor (None)");
  if (untracked({&grad_output, &input, &weight})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::conv_transpose_backward(grad_output, input, weight, stride,
                                        padding, output_padding, groups,
                                        dilation, output_mask);
  }
  Hyper h{to_vector(stride), to_vector(padding), to_vector(dilation),
          to_vector(output_padding), groups, true};
  return unpack(output_mask, TrueConvBackwardFunction::apply(
                                 grad_output, input, weight, h, output_mask));
}

}  // namespace

TORCH_LIBRARY_IMPL(torchflip, Autograd, m) {
  m.impl("conv", &conv_autograd);
  m.impl("conv_backward", &conv_backward_autograd);
  m.impl("conv_transpose", &conv_transpose_autograd);
  m.impl("conv_transpose_backward", &conv_transpose_backward_autograd);
}

}  // namespace torchflip::detail
