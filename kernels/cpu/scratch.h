#pragma once
// Grow-only 64-byte-aligned scratch memory for the GEMM drivers, meant to be kept per thread
// (thread_local) so that repeated calls neither allocate nor touch fresh pages.
#include <cstddef>
#include <new>

namespace shallow::cpu {

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }

  template <class T>
  T* get(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes > bytes_) {
      release();
      ptr_ = ::operator new(bytes, std::align_val_t{64});
      bytes_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void release() {
    if (ptr_) ::operator delete(ptr_, std::align_val_t{64});
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace shallow::cpu
