#include "engine/allocator.h"

#include <map>
#include <mutex>

#include "engine/cpu_allocator.h"
#include "engine/error.h"

namespace shallow {
namespace {

std::mutex registry_mu;
std::map<int, Allocator*>& cuda_allocators() {
  static std::map<int, Allocator*> m;
  return m;
}

}  // namespace

Allocator& allocator_for(Device d) {
  if (d.is_cpu()) return cpu_allocator();
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    auto it = cuda_allocators().find(d.index);
    if (it != cuda_allocators().end()) return *it->second;
  }
  return cuda_caching_allocator(d.index);  // throws when there is no such GPU
}

void register_allocator(Device d, Allocator* a) {
  std::lock_guard<std::mutex> lock(registry_mu);
  cuda_allocators()[d.index] = a;
}

MemoryStats memory_stats(Device d) { return allocator_for(d).stats(); }
void reset_peak_memory(Device d) { allocator_for(d).reset_peak(); }

}  // namespace shallow
