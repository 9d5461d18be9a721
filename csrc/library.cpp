// The schemas of every torchflip operator, in one place.
//
// Public ops (conv, conv_backward, conv_transpose, conv_transpose_backward)
// carry autograd kernels written in C++ (autograd.cpp), so gradients of any
// order work from Python and from libtorch. The underscored twins run the same
// kernels with no autograd kernel at all: torch.func transforms cannot enter a
// C++ autograd::Function, so the Python API drives the twins through a Python
// autograd.Function (torchflip/_autograd.py) whenever a functorch transform or
// forward-mode AD is active.
#include <torch/library.h>

TORCH_LIBRARY(torchflip, m) {
  m.def(
      "conv(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, "
      "SymInt[] padding, SymInt[] dilation, SymInt groups) -> Tensor");
  m.def(
      "conv_backward(Tensor grad_output, Tensor input, Tensor weight, "
      "SymInt[] stride, SymInt[] padding, SymInt[] dilation, SymInt groups, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "conv_transpose(Tensor input, Tensor weight, Tensor? bias, "
      "SymInt[] stride, SymInt[] padding, SymInt[] output_padding, "
      "SymInt groups, SymInt[] dilation) -> Tensor");
  m.def(
      "conv_transpose_backward(Tensor grad_output, Tensor input, "
      "Tensor weight, SymInt[] stride, SymInt[] padding, "
      "SymInt[] output_padding, SymInt groups, SymInt[] dilation, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");

  m.def(
      "_conv(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, "
      "SymInt[] padding, SymInt[] dilation, SymInt groups) -> Tensor");
  m.def(
      "_conv_backward(Tensor grad_output, Tensor input, Tensor weight, "
      "SymInt[] stride, SymInt[] padding, SymInt[] dilation, SymInt groups, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "_conv_transpose(Tensor input, Tensor weight, Tensor? bias, "
      "SymInt[] stride, SymInt[] padding, SymInt[] output_padding, "
      "SymInt groups, SymInt[] dilation) -> Tensor");
  m.def(
      "_conv_transpose_backward(Tensor grad_output, Tensor input, "
      "Tensor weight, SymInt[] stride, SymInt[] padding, "
      "SymInt[] output_padding, SymInt groups, SymInt[] dilation, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}
