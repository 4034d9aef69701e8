//===- LoadModel.h - a model for the bindings, loaded without the GIL -----===//
//
// Shared by _dsmlir (Module.cpp) and _dsengine (EngineModule.cpp), which
// raise their errors differently: each passes its own `check`.
//
//===----------------------------------------------------------------------===//
#ifndef DS_PYTHON_LOADMODEL_H
#define DS_PYTHON_LOADMODEL_H

#include "dsrt/dsrt.h"

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

/// dsrt_model_load with the GIL released (loading maps and checks the
/// checkpoint: seconds that other Python threads may use), and its info.
/// `check(status)` throws on a failure.
template <typename Check>
std::shared_ptr<dsrt_model>
loadModel(const std::string &artifact, const std::string &weights,
          const std::string &device, dsrt_model_info &info, Check check) {
  dsrt_model *m = nullptr;
  dsrt_status st;
  {
    pybind11::gil_scoped_release release;
    st = dsrt_model_load(artifact.c_str(), weights.c_str(), device.c_str(), &m);
  }
  check(st);
  std::shared_ptr<dsrt_model> model(m, dsrt_model_free);
  check(dsrt_model_info_get(m, &info));
  return model;
}

#endif // DS_PYTHON_LOADMODEL_H
