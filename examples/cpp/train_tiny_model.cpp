// Trains a tiny model built on torchflip's C++ API with libtorch: a 2-D true
// convolution whose kernel is unknown is identified from input/output pairs
// by gradient descent. The gradients come from torchflip's C++ autograd.
//
// Build and run (see CMakeLists.txt):
//   cmake -S . -B build/cmake -DCMAKE_PREFIX_PATH=... && cmake --build build/cmake
//   ./build/cmake/train_tiny_model
#include <torch/torch.h>
#include <torchflip/torchflip.h>

#include <cstdio>

// A true-convolution layer: the parameters are registered as in torch::nn,
// the computation is torchflip::conv2d.
struct TrueConv2dImpl : torch::nn::Module {
  TrueConv2dImpl(int64_t in, int64_t out, int64_t k)
      : weight(register_parameter("weight", torch::randn({out, in, k, k}) * 0.1)),
        bias(register_parameter("bias", torch::zeros({out}))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return torchflip::conv2d(x, weight, bias, 1, weight.size(2) / 2);
  }

  torch::Tensor weight, bias;
};
TORCH_MODULE(TrueConv2d);

int main() {
  torch::manual_seed(0);
  // The unknown system: an asymmetric blur, so a wrong (unflipped) kernel
  // would be visible in the result.
  auto true_kernel = torch::zeros({1, 1, 3, 3});
  true_kernel.index_put_({0, 0, 0, 0}, 1.0);
  true_kernel.index_put_({0, 0, 1, 2}, 0.5);
  true_kernel.index_put_({0, 0, 2, 1}, -0.25);

  TrueConv2d model(1, 1, 3);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(0.05));

  double loss_value = 0.0;
  for (int step = 0; step < 300; ++step) {
    auto x = torch::randn({16, 1, 12, 12});
    auto target = torchflip::conv2d(x, true_kernel, {}, 1, 1);
    auto loss = torch::mse_loss(model->forward(x), target);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    loss_value = loss.item<double>();
    if (step % 100 == 0) std::printf("step %3d  loss %.3e\n", step, loss_value);
  }
  const double kernel_error =
      (model->weight.detach() - true_kernel).abs().max().item<double>();
  std::printf("final loss %.3e, max |kernel error| %.3e\n", loss_value, kernel_error);
  std::printf("recovered kernel:\n");
  std::cout << model->weight.detach().squeeze() << "\n";
  return kernel_error < 1e-2 ? 0 : 1;
}
