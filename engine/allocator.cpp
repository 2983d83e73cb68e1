#include "engine/allocator.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "engine/error.h"

namespace shallow {
namespace {

// 64-byte alignment: one cache line, and what AVX-512 loads want.
constexpr size_t kAlign = 64;

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
    if (rounded == 0) rounded = kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw Error(str_cat("out of memory: could not allocate ", nbytes, " bytes on cpu (",
                                current_.load(), " bytes in use)"));
    int64_t now = current_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {}
    ++allocations_;
    return p;
  }
  void deallocate(void* p, size_t nbytes) override {
    std::free(p);
    current_.fetch_sub(int64_t(nbytes));
  }
  MemoryStats stats() const override {
    MemoryStats s;
    s.current_bytes = current_.load();
    s.peak_bytes = peak_.load();
    s.reserved_bytes = s.current_bytes;
    s.allocations = allocations_.load();
    return s;
  }
  void reset_peak() override { peak_.store(current_.load()); }

 private:
  std::atomic<int64_t> current_{0}, peak_{0}, allocations_{0};
};

std::mutex registry_mu;
std::map<int, Allocator*>& cuda_allocators() {
  static std::map<int, Allocator*> m;
  return m;
}

}  // namespace

Allocator& allocator_for(Device d) {
  static CpuAllocator cpu;
  if (d.is_cpu()) return cpu;
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
