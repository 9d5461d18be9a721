// The Python extension module torchflip._C. It exposes nothing itself:
// importing it loads this shared library, whose static initialisers register
// the operators with the dispatcher (torch.ops.torchflip.*). Only <Python.h>
// is needed, which keeps pybind11 out of the build.
#include <Python.h>

#include "torchflip_build_info.h"

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",
      "torchflip's compiled operators, registered as torch.ops.torchflip.*",
      -1,
      nullptr,
  };
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  // openmp: whether at::parallel_for in torchflip's own kernels runs on
  // torch's OpenMP threads or compiled to a serial loop (setup.py's
  // openmp_flags).
#ifdef _OPENMP
  constexpr long kOpenMP = 1;
#else
  constexpr long kOpenMP = 0;
#endif
  // source_hash and torch_version are checked by torchflip/_extension.py to
  // detect a stale or mismatched build.
  if (PyModule_AddStringConstant(module, "source_hash",
                                 TORCHFLIP_SOURCE_HASH) < 0 ||
      PyModule_AddStringConstant(module, "torch_version",
                                 TORCHFLIP_TORCH_VERSION) < 0 ||
      PyModule_AddIntConstant(module, "openmp", kOpenMP) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}
