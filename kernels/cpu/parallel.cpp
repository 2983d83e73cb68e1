#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace shallow::cpu {
namespace {

thread_local bool in_worker = false;

class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop(); }

  int size() const { return int(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    // New workers wait for the next job, not for one that ran before a resize.
    const uint64_t current = generation_;
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this, i, current] { loop(i, current); });
  }

  // Runs job(i) for i in [0, size()) with the caller taking index 0; rethrows the first error.
  void run(const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> lock(mu_);
    job_ = &job;
    pending_ = int(workers_.size());
    error_ = nullptr;
    ++generation_;
    cv_work_.notify_all();
    lock.unlock();

    std::exception_ptr mine;
    in_worker = true;
    try { job(0); } catch (...) { mine = std::current_exception(); }
    in_worker = false;

    lock.lock();
    cv_done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop(int i, uint64_t seen) {
    in_worker = true;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_work_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      const auto* job = job_;
      lock.unlock();
      std::exception_ptr err;
      try { (*job)(i + 1); } catch (...) { err = std::current_exception(); }
      lock.lock();
      if (err && !error_) error_ = err;
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      cv_work_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

ThreadPool& pool() {
  static ThreadPool p(default_threads());
  return p;
}

std::mutex& run_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(run_mutex());
  pool().resize(n <= 0 ? default_threads() : n);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
  if (chunks <= 1 || in_worker) {
    fn(begin, end);
    return;
  }
  // One parallel region at a time; other callers (other user threads) wait their turn.
  std::lock_guard<std::mutex> lock(run_mutex());
  const int64_t step = (n + chunks - 1) / chunks;
  pool().run([&](int t) {
    int64_t b = begin + t * step;
    int64_t e = std::min(end, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace shallow::cpu
