#pragma once
// A small fixed thread pool shared by all CPU kernels. Work is split into contiguous chunks,
// one per thread; a call made from inside a worker runs serially so that nesting never deadlocks.
#include <cstdint>
#include <functional>

namespace shallow::cpu {

// Number of threads used by parallel_for (the caller counts as one of them).
int num_threads();
// Sets the thread count; n <= 0 means "all hardware threads".
void set_num_threads(int n);

// Calls fn(begin_chunk, end_chunk) over [begin, end) split among the threads. Chunks are at
// least `grain` long, so small loops stay on the calling thread.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace shallow::cpu
