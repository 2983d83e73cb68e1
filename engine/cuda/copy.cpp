// Copies that involve a GPU: device to device with the strided conversion kernel, host to
// device and back through pinned staging buffers, and fill.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda/api.h"
#include "engine/cuda/ops.h"
#include "engine/cuda/runtime.h"
#include "kernels/cuda/copy.h"

namespace shallow::gpu {
namespace {

// Pinned host memory makes cudaMemcpyAsync a true DMA transfer (pageable memory would be
// copied through a driver buffer first). One staging buffer per process, used in chunks of
// at most kChunk bytes; the mutex serializes transfers that use it.
constexpr size_t kChunk = size_t(64) << 20;

struct Staging {
  std::mutex mu;
  void* buffer = nullptr;
  size_t size = 0;
};

Staging& staging() {
  static auto* s = new Staging;  // never freed: pinned memory lives as long as the process
  return *s;
}

void* staging_buffer(Staging& s, size_t need, const char* op) {
  if (s.size >= need) return s.buffer;
  if (s.buffer) SH_CUDA_CHECK(cudaFreeHost(s.buffer), op);
  s.buffer = nullptr;
  s.size = 0;
  // Portable: pinned for every device's context, since one buffer serves them all.
  SH_CUDA_CHECK(cudaHostAlloc(&s.buffer, need, cudaHostAllocPortable), op);
  s.size = need;
  return s.buffer;
}

// Small uploads (labels, indices, a batch's order) do not wait for the GPU: the bytes are
// copied into one of a ring of pinned slots per device and the transfer is queued on the
// stream, where every later kernel sees it. A slot is reused only after its event says the
// transfer out of it is over, so the host waits only when it is kSlots uploads ahead.
constexpr size_t kSlotBytes = size_t(256) << 10;
constexpr int kSlots = 16;

struct UploadRing {
  void* slots[kSlots] = {};
  cudaEvent_t done[kSlots] = {};
  int next = 0;
};

UploadRing& ring_for(Device d, const char* op) {
  static std::vector<UploadRing*> rings(size_t(std::max(cuda_device_count(), 1)), nullptr);
  UploadRing*& r = rings.at(size_t(d.index));
  if (r == nullptr) {  // never freed, as the staging buffer
    auto* fresh = new UploadRing;
    for (int i = 0; i < kSlots; ++i) {
      SH_CUDA_CHECK(cudaHostAlloc(&fresh->slots[i], kSlotBytes, cudaHostAllocPortable), op);
      SH_CUDA_CHECK(cudaEventCreateWithFlags(&fresh->done[i], cudaEventDisableTiming), op);
    }
    r = fresh;
  }
  return *r;
}

// bytes from host memory to device memory: queued on the device's stream (small ones) or
// complete on return (large ones). Either way the host memory may be reused at once.
void upload(void* dev, const void* host, size_t bytes, Device d, const char* op) {
  if (bytes == 0) return;
  cudaStream_t stream = stream_for(d, op);
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  if (bytes <= kSlotBytes) {
    UploadRing& r = ring_for(d, op);
    const int slot = r.next;
    r.next = (r.next + 1) % kSlots;
    SH_CUDA_CHECK(cudaEventSynchronize(r.done[slot]), op);  // at once unless kSlots behind
    std::memcpy(r.slots[slot], host, bytes);
    SH_CUDA_CHECK(cudaMemcpyAsync(dev, r.slots[slot], bytes, cudaMemcpyHostToDevice, stream), op);
    SH_CUDA_CHECK(cudaEventRecord(r.done[slot], stream), op);
    return;
  }
  void* pinned = staging_buffer(s, std::min(bytes, kChunk), op);
  for (size_t done = 0; done < bytes; done += kChunk) {
    const size_t n = std::min(kChunk, bytes - done);
    std::memcpy(pinned, static_cast<const char*>(host) + done, n);
    SH_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dev) + done, pinned, n,
                                  cudaMemcpyHostToDevice, stream), op);
    // The staging buffer is refilled next: the transfer out of it must be over.
    SH_CUDA_CHECK(cudaStreamSynchronize(stream), op);
  }
}

// bytes from device memory to host memory, after everything queued before; complete on return.
void download(void* host, const void* dev, size_t bytes, Device d, const char* op) {
  if (bytes == 0) return;
  cudaStream_t stream = stream_for(d, op);
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  void* pinned = staging_buffer(s, std::min(bytes, kChunk), op);
  for (size_t done = 0; done < bytes; done += kChunk) {
    const size_t n = std::min(kChunk, bytes - done);
    SH_CUDA_CHECK(cudaMemcpyAsync(pinned, static_cast<const char*>(dev) + done, n,
                                  cudaMemcpyDeviceToHost, stream), op);
    SH_CUDA_CHECK(cudaStreamSynchronize(stream), op);
    std::memcpy(static_cast<char*>(host) + done, pinned, n);
  }
}

size_t byte_size(const Tensor& t) { return size_t(t.numel()) * dtype_size(t.dtype()); }

// dst = src on one GPU, converting the dtype, any layouts.
void device_copy(const Tensor& src, Tensor& dst, const char* op) {
  cudaStream_t stream = stream_for(dst.device(), op);
  const int nd = int(dst.dim());
  SH_DISPATCH_ALL(src.dtype(), [&] {
    using S = scalar_t;
    const S* sp = static_cast<const S*>(src.raw_data());
    SH_DISPATCH_ALL(dst.dtype(), [&] {
      check(cuda::strided_copy<S, scalar_t>(nd, dst.shape().data(), sp, src.strides().data(),
                                            static_cast<scalar_t*>(dst.raw_data()),
                                            dst.strides().data(), stream),
            op);
    });
  });
}

}  // namespace

void copy(const Tensor& src, Tensor& dst) {
  const char* op = "copy_";
  SH_CHECK(src.shape() == dst.shape(), op, ": shapes differ, ", shape_str(src.shape()), " vs ",
           shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  const Device sd = src.device(), dd = dst.device();
  NoGrad no_grad;  // the staging tensors below are plumbing, never part of a graph

  if (sd.is_cuda() && dd.is_cuda()) {
    if (sd == dd) return device_copy(src, dst, op);
    Tensor host = src.to(Device::cpu());  // between two GPUs: through the host
    return copy(host, dst);
  }

  if (sd.is_cpu()) {  // host -> device
    // The values in dst's dtype, contiguous, on the host (converted by the CPU copy).
    Tensor host = src;
    if (!src.is_contiguous() || src.dtype() != dst.dtype()) {
      host = Tensor::empty(src.shape(), dst.dtype());
      host.copy_(src);
    }
    if (dst.is_contiguous()) return upload(dst.raw_data(), host.raw_data(), byte_size(host), dd, op);
    Tensor dense = Tensor::empty(dst.shape(), dst.dtype(), dd);
    upload(dense.raw_data(), host.raw_data(), byte_size(host), dd, op);
    return device_copy(dense, dst, op);
  }

  // device -> host: the values contiguous on the device in src's dtype, then down.
  Tensor dense = src;
  if (!src.is_contiguous()) {
    dense = Tensor::empty(src.shape(), src.dtype(), sd);
    device_copy(src, dense, op);
  }
  if (dst.is_contiguous() && dst.dtype() == src.dtype())
    return download(dst.raw_data(), dense.raw_data(), byte_size(dense), sd, op);
  Tensor host = Tensor::empty(src.shape(), src.dtype());
  download(host.raw_data(), dense.raw_data(), byte_size(dense), sd, op);
  dst.copy_(host);  // the CPU copy converts and lays out
}

void fill(Tensor& t, double value) {
  const char* op = "fill_";
  SH_CHECK(t.is_contiguous(), op, ": gpu::fill needs a contiguous tensor");
  cudaStream_t stream = stream_for(t.device(), op);
  SH_DISPATCH_ALL(t.dtype(), [&] {
    check(cuda::fill<scalar_t>(t.numel(), static_cast<scalar_t*>(t.raw_data()),
                               static_cast<scalar_t>(value), stream),
          op);
  });
}

}  // namespace shallow::gpu
