#pragma once
// How a CUDA kernel entry point reports failure without knowing the engine's error type:
// it returns a Status naming the call that failed (a kernel launch, a cudaMemcpy, a cuBLAS
// function) and the library's message. The engine turns a failed Status into shallow::Error
// naming the op as well.
#include <string>

namespace shallow::cuda {

struct Status {
  std::string call;     // the CUDA or cuBLAS call (or kernel) that failed; empty when ok
  std::string message;  // the library's own description of the error
  bool ok() const { return call.empty(); }
};

inline Status ok_status() { return {}; }

}  // namespace shallow::cuda
