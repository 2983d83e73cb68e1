#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <atomic>
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
    stopping_.store(false, std::memory_order_relaxed);
    // New workers wait for the next job, not for one that ran before a resize.
    const uint64_t current = generation_.load(std::memory_order_relaxed);
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this, i, current] { loop(i, current); });
  }

  // Runs job(i) for i in [0, size()) with the caller taking index 0; rethrows the first error.
  void run(const std::function<void(int)>& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      pending_.store(int(workers_.size()), std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);  // publishes job_ to spinning workers
      cv_work_.notify_all();                                // and wakes the sleeping ones
    }

    std::exception_ptr mine;
    in_worker = true;
    try { job(0); } catch (...) { mine = std::current_exception(); }
    in_worker = false;

    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lock(mu_);
    job_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Ops run one parallel region after another, microseconds apart; a thread put to sleep
  // between them takes tens of microseconds to wake (more under a hypervisor). So a worker that
  // finished, and the caller waiting for the workers, first spin for a short while (about
  // 50 us), and only then sleep: long gaps cost no CPU beyond that.
  template <class Ready>
  static bool spin_until(Ready ready) {
    for (int i = 0; i < kSpins; ++i) {
      if (ready()) return true;
      pause();
    }
    return ready();
  }

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  static constexpr int kSpins = 4000;

  void loop(int i, uint64_t seen) {
    in_worker = true;
    for (;;) {
      auto has_news = [&] {
        return stopping_.load(std::memory_order_acquire) ||
               generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spin_until(has_news)) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_work_.wait(lock, has_news);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      const auto* job = job_;
      std::exception_ptr err;
      try { (*job)(i + 1); } catch (...) { err = std::current_exception(); }
      if (err) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = err;
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);  // the caller checks pending_ under it to sleep
        cv_done_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_.store(true, std::memory_order_release);
      cv_work_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
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
