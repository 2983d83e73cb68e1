// CPU memory for tensors. Blocks below 1 MiB come from malloc, which keeps its own free lists.
// Larger ones would go to the system (mmap) on every allocation and back on every free, their
// pages faulted in and zeroed again at first touch: a training step's activations and gradients,
// the same sizes step after step, paid that every time (a 146 MB convolution output: 55 ms of
// faults against 15 ms of work). So large blocks are rounded up to whole 2 MiB pages, aligned
// to 2 MiB and marked for transparent huge pages (a fault per 2 MiB where the kernel allows it),
// and on free kept for the next request of the same rounded size, up to a cap on the bytes
// kept (SHALLOW_CPU_CACHE_MB; by default 4096, or an eighth of the memory where that is less;
// 0 keeps nothing). Under AddressSanitizer nothing is kept, so that a use after free still
// shows.
#include "engine/cpu_allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "engine/error.h"

namespace shallow {
namespace {

constexpr size_t kAlign = 64;               // a cache line, and what AVX-512 loads want
constexpr size_t kLargeBlock = size_t(1) << 20;
constexpr size_t kPage = size_t(2) << 20;   // a transparent huge page on x86-64

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

bool is_large(size_t nbytes) { return nbytes >= kLargeBlock; }

// What a request of nbytes takes: whole 2 MiB pages for a large block, cache lines otherwise.
size_t block_size(size_t nbytes) {
  return is_large(nbytes) ? round_up(nbytes, kPage) : round_up(nbytes ? nbytes : 1, kAlign);
}

size_t cache_cap_bytes() {
#if defined(__SANITIZE_ADDRESS__)
  return 0;
#else
  const char* env = std::getenv("SHALLOW_CPU_CACHE_MB");
  if (!env || !*env) {  // 4 GiB, or an eighth of the memory on a smaller machine
    size_t cap = size_t(4096) << 20;
#if defined(__linux__)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) cap = std::min(cap, size_t(pages) * size_t(page) / 8);
#endif
    return cap;
  }
  char* end = nullptr;
  const long long mb = std::strtoll(env, &end, 10);
  if (*end != '\0' || mb < 0)
    throw Error(str_cat("SHALLOW_CPU_CACHE_MB must be a number of MiB >= 0, got '", env, "'"));
  return size_t(mb) << 20;
#endif
}

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    const bool large = is_large(nbytes);
    const size_t size = block_size(nbytes);
    void* p = large ? take_cached(size) : nullptr;
    if (!p) p = from_system(nbytes, size, large);
    const int64_t now = current_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {}
    ++allocations_;
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    current_.fetch_sub(int64_t(nbytes));
    const size_t size = block_size(nbytes);
    if (is_large(nbytes) && keep(p, size)) return;
    std::free(p);
    reserved_.fetch_sub(int64_t(size));
  }

  MemoryStats stats() const override {
    MemoryStats s;
    s.current_bytes = current_.load();
    s.peak_bytes = peak_.load();
    s.reserved_bytes = reserved_.load();
    s.allocations = allocations_.load();
    return s;
  }

  void reset_peak() override { peak_.store(current_.load()); }

  void release_cache() override {
    std::vector<void*> blocks;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [size, list] : free_) {
        for (void* p : list) blocks.push_back(p), bytes += size;
        list.clear();
      }
      cached_ = 0;
    }
    for (void* p : blocks) std::free(p);
    reserved_.fetch_sub(int64_t(bytes));
  }

 private:
  void* take_cached(size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    return p;
  }

  bool keep(void* p, size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + size > cap_) return false;
    free_[size].push_back(p);
    cached_ += size;
    return true;
  }

  void* from_system(size_t nbytes, size_t size, bool large) {
    void* p = std::aligned_alloc(large ? kPage : kAlign, size);
    if (!p && cached_bytes() > 0) {  // blocks of other sizes may be what stands in the way
      release_cache();
      p = std::aligned_alloc(large ? kPage : kAlign, size);
    }
    if (!p)
      throw Error(str_cat("out of memory: could not allocate ", nbytes, " bytes on cpu (",
                          current_.load(), " bytes in use)"));
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
    if (large) madvise(p, size, MADV_HUGEPAGE);  // advice only: refused, it changes nothing
#endif
    reserved_.fetch_add(int64_t(size));
    return p;
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  std::atomic<int64_t> current_{0}, peak_{0}, reserved_{0}, allocations_{0};
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // kept blocks by rounded size
  size_t cached_ = 0;
  const size_t cap_ = cache_cap_bytes();
};

}  // namespace

Allocator& cpu_allocator() {
  static CpuAllocator* cpu = new CpuAllocator;  // never destroyed: tensors may outlive statics
  return *cpu;
}

}  // namespace shallow
