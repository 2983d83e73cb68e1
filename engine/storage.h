#pragma once
// A refcounted block of device memory. Tensors hold a shared_ptr<Storage>; views share it.
#include <cstddef>
#include <memory>

#include "engine/device.h"

namespace shallow {

class Storage {
 public:
  // Allocates nbytes on the device through its allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned by someone else (a memory-mapped file, say); `owner` keeps it alive.
  Storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::shared_ptr<void> owner_;  // set for wrapped memory; allocator memory has none
};

}  // namespace shallow
