// C++ API test: values, gradients (first and second order, through the C++
// autograd kernels) and argument validation, against libtorch's own
// cross-correlation with a flipped weight.
#include <torch/torch.h>
#include <torchflip/torchflip.h>

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n";
  if (!ok) ++failures;
}

bool close(const at::Tensor& a, const at::Tensor& b, double tol = 1e-10) {
  return a.sizes() == b.sizes() && (a - b).abs().max().item<double>() <= tol;
}

}  // namespace

int main() {
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);

  // Forward, 2-D with stride, padding, dilation and groups.
  auto x = torch::randn({2, 4, 11, 9}, opts).requires_grad_();
  auto w = torch::randn({6, 2, 3, 2}, opts).requires_grad_();
  auto b = torch::randn({6}, opts).requires_grad_();
  auto y = torchflip::conv2d(x, w, b, {2, 1}, {1, 0}, {1, 2}, 2);
  auto ref = torch::conv2d(x, w.flip({2, 3}), b, {2, 1}, {1, 0}, {1, 2}, 2);
  expect(close(y, ref), "conv2d equals torch::conv2d with the flipped weight");

  // First-order gradients through the C++ autograd kernel.
  auto g = torch::randn_like(y);
  auto grads = torch::autograd::grad({y}, {x, w, b}, {g}, true, true);
  auto ref_grads = torch::autograd::grad({ref}, {x, w, b}, {g}, true, true);
  for (size_t i = 0; i < 3; ++i) {
    expect(close(grads[i], ref_grads[i]),
           "gradient " + std::to_string(i) + " equals libtorch's");
  }

  // Second order: the gradient of a function of the gradients.
  auto s = grads[0].pow(2).sum() + grads[1].pow(2).sum();
  auto s_ref = ref_grads[0].pow(2).sum() + ref_grads[1].pow(2).sum();
  auto gg = torch::autograd::grad({s}, {x, w});
  auto gg_ref = torch::autograd::grad({s_ref}, {x, w});
  expect(close(gg[1], gg_ref[1], 1e-8), "double backward (weight) equals libtorch's");
  expect(close(gg[0], gg_ref[0], 1e-8), "double backward (input) equals libtorch's");

  // 1-D and 3-D, and the transposed op.
  auto x1 = torch::randn({3, 2, 20}, opts);
  auto w1 = torch::randn({5, 2, 4}, opts);
  expect(close(torchflip::conv1d(x1, w1, {}, 3, 2),
               torch::conv1d(x1, w1.flip({2}), {}, 3, 2)),
         "conv1d equals torch::conv1d with the flipped weight");
  auto x3 = torch::randn({1, 2, 5, 6, 7}, opts);
  auto w3 = torch::randn({3, 2, 2, 3, 2}, opts);
  expect(close(torchflip::conv3d(x3, w3, {}, 1, {1, 0, 1}),
               torch::conv3d(x3, w3.flip({2, 3, 4}), {}, 1, {1, 0, 1})),
         "conv3d equals torch::conv3d with the flipped weight");
  auto wt = torch::randn({4, 3, 3, 3}, opts);
  auto xt = torch::randn({2, 4, 5, 5}, opts);
  expect(close(torchflip::conv_transpose2d(xt, wt, {}, 2, 1, 1),
               torch::conv_transpose2d(xt, wt.flip({2, 3}), {}, 2, 1, 1)),
         "conv_transpose2d equals torch::conv_transpose2d with the flipped weight");

  // Validation raises c10::ValueError naming the argument; nothing crashes.
  try {
    torchflip::conv2d(x.detach(), w.detach(), {}, {0, 1});
    expect(false, "stride=0 raises");
  } catch (const c10::ValueError& e) {
    expect(std::string(e.what()).find("stride") != std::string::npos,
           "stride=0 raises c10::ValueError naming 'stride'");
  }
  try {
    torchflip::conv2d(x.detach(), w.detach(), {}, 1, 0, 1, 3);
    expect(false, "groups=3 raises");
  } catch (const c10::ValueError& e) {
    expect(std::string(e.what()).find("groups") != std::string::npos,
           "groups not dividing the channels raises c10::ValueError naming 'groups'");
  }

  std::cout << (failures == 0 ? "all passed" : "FAILED") << "\n";
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
