#pragma once
// Every tensor byte is allocated here, so that current and peak use per device are known.
#include <cstddef>
#include <cstdint>

#include "engine/device.h"

namespace shallow {

struct MemoryStats {
  int64_t current_bytes = 0;   // held by live storages
  int64_t peak_bytes = 0;      // highest current_bytes since the last reset
  int64_t reserved_bytes = 0;  // taken from the system (caching allocators hold more than current)
  int64_t allocations = 0;     // number of allocate() calls
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Gives cached blocks back to the system (a no-op where nothing is cached).
  virtual void release_cache() {}
};

// The allocator of a device; throws if the device has no backend in this build.
Allocator& allocator_for(Device d);
MemoryStats memory_stats(Device d = Device::cpu());
void reset_peak_memory(Device d = Device::cpu());

// Registers the allocator of a non-CPU device (called by the CUDA backend at start-up).
void register_allocator(Device d, Allocator* a);

// The CUDA backend's caching allocator of GPU `index` (engine/cuda/allocator.cpp), which
// allocator_for uses for a CUDA device nobody registered; throws where the build has no CUDA
// backend or the machine no such GPU.
Allocator& cuda_caching_allocator(int index);

}  // namespace shallow
