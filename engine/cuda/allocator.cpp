// The caching allocator of GPU memory. cudaMalloc and cudaFree are slow and synchronize the
// device, so a freed block is kept in a bin by size and handed out again to a later request
// of about its size. Sizes are rounded up to a class (512-byte steps up to 1 MiB, 2 MiB steps
// above) so that blocks of slightly different requests are interchangeable.
//
// All work runs on one stream per device, in order, so a block freed on the host while a
// queued kernel still reads it is safe to reuse: the next user's kernels run after that one.
#include <cuda_runtime_api.h>

#include <map>
#include <sstream>
#include <utility>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/allocator.h"
#include "engine/cuda/api.h"
#include "engine/cuda/runtime.h"

namespace shallow {
namespace {

constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kLargeStep = size_t(2) << 20;   // 2 MiB

size_t size_class(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  const size_t step = nbytes <= kSmallLimit ? kSmallStep : kLargeStep;
  return (nbytes + step - 1) / step * step;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (b >= 1024 && u < 5) { b /= 1024; ++u; }
  std::ostringstream os;
  os.precision(u == 0 ? 0 : 2);
  os << std::fixed << b << " " << units[u];
  return os.str();
}

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(Device::cuda(device)) {}

  void* allocate(size_t nbytes) override {
    const size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto [p, block] = take_cached(size);
    if (!p) {
      p = malloc_block(size, nbytes);
      block = size;
    }
    live_[p] = block;
    current_ += int64_t(nbytes);
    if (current_ > peak_) peak_ = current_;
    ++allocations_;
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor
    free_.emplace(it->second, p);
    live_.erase(it);
    current_ -= int64_t(nbytes);
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats s;
    s.current_bytes = current_;
    s.peak_bytes = peak_;
    s.reserved_bytes = reserved_;
    s.allocations = allocations_;
    return s;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = current_;
  }

  void release_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cache_locked();
  }

 private:
  // A cached block of at least `size` bytes and at most a quarter more (a bigger one would
  // waste what it does not use), with its size; {nullptr, 0} when there is none.
  std::pair<void*, size_t> take_cached(size_t size) {
    auto it = free_.lower_bound(size);
    if (it == free_.end() || it->first > size + size / 4) return {nullptr, 0};
    std::pair<void*, size_t> block{it->second, it->first};
    free_.erase(it);
    return block;
  }

  void* malloc_block(size_t size, size_t requested) {
    const char* op = "allocate";
    gpu::stream_for(device_, op);  // sets the device
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error, then retry with the cache given back
      release_cache_locked();
      e = cudaMalloc(&p, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
      throw Error(str_cat("out of memory on ", device_.str(), ": could not allocate ",
                          human_bytes(double(requested)), " (", requested, " bytes); ",
                          human_bytes(double(current_)), " in use by tensors, ",
                          human_bytes(double(reserved_)), " reserved by the allocator, ",
                          human_bytes(double(free_b)), " free of ", human_bytes(double(total_b)),
                          " on the device"));
    }
    gpu::check(e, "cudaMalloc", op);
    reserved_ += int64_t(size);
    return p;
  }

  void release_cache_locked() {
    if (free_.empty()) return;
    // Blocks in the cache may still be read by queued kernels: wait for them first.
    SH_CUDA_CHECK(cudaStreamSynchronize(gpu::stream_for(device_, "empty_cache")), "empty_cache");
    for (auto& [size, p] : free_) {
      SH_CUDA_CHECK(cudaFree(p), "empty_cache");
      reserved_ -= int64_t(size);
    }
    free_.clear();
  }

  const Device device_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;         // cached blocks by size
  std::unordered_map<void*, size_t> live_;    // handed-out blocks and their sizes
  int64_t current_ = 0, peak_ = 0, reserved_ = 0, allocations_ = 0;
};

}  // namespace

Allocator& cuda_caching_allocator(int index) {
  SH_CHECK(cuda_available(), "device cuda:", index,
           " is not available: no CUDA device or driver on this machine");
  SH_CHECK(index >= 0 && index < cuda_device_count(), "device cuda:", index, " does not exist (",
           cuda_device_count(), " CUDA devices)");
  static std::mutex mu;
  // Never destroyed, like the streams: tensors in static storage are freed after main returns.
  static auto* all = new std::vector<CudaCachingAllocator*>(size_t(cuda_device_count()), nullptr);
  std::lock_guard<std::mutex> lock(mu);
  auto& a = (*all)[size_t(index)];
  if (!a) a = new CudaCachingAllocator(index);
  return *a;
}

}  // namespace shallow
