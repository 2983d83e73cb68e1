// How fast a large safetensors file opens and reads, against reading the same file with read().
//
// A 1 GiB file of 64 f32 tensors (16 MiB each) is written once to $TMPDIR (or /tmp) and
// removed at exit. Figures (both with the file in the page cache, the usual case when weights
// are loaded more than once; a cold read is bounded by the disk for both alike):
//   Open          parse the header and map the file: no tensor data is read.
//   OpenReadAll   open, then touch every byte of every tensor (a sum, so nothing is skipped).
//   ReadSyscall   read() the whole file into one buffer and touch it: the machine's file read
//                 speed, the baseline.
// Counters: bytes/s, and the resident-set growth while the file is open (`rss_mb`), which for
// Open stays near zero and for a single tensor read is that tensor's size.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "weights_import/safetensors.h"

namespace {

constexpr int64_t kTensors = 64;
constexpr int64_t kElements = int64_t(4) << 20;  // 16 MiB of f32 each, 1 GiB in all
constexpr double kFileBytes = double(kTensors * kElements * 4);

// Resident set size of this process in MiB, from /proc/self/statm.
double resident_mb() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / double(1 << 20);
}

struct BigFile {
  std::string path;
  BigFile() {
    const char* tmp = std::getenv("TMPDIR");
    path = std::string(tmp ? tmp : "/tmp") + "/bench_weights_load_" + std::to_string(getpid()) +
           ".safetensors";
    std::map<std::string, shallow::Tensor> tensors;
    for (int64_t i = 0; i < kTensors; ++i) {
      shallow::Tensor t = shallow::Tensor::empty({kElements}, shallow::DType::f32);
      float* p = t.data<float>();
      for (int64_t j = 0; j < kElements; ++j) p[j] = float((i + j) % 251);
      tensors["blocks." + std::to_string(i) + ".weight"] = t;
    }
    shallow::write_safetensors(path, tensors);
  }
  ~BigFile() { std::remove(path.c_str()); }
};

const BigFile& big_file() {
  static BigFile file;
  return file;
}

// Touches every byte (as 64-bit words, a sum the compiler vectorizes), so the figure is the
// cost of bringing the data in, not of the arithmetic.
uint64_t touch_bytes(const void* data, size_t bytes) {
  const auto* p = static_cast<const uint64_t*>(data);
  uint64_t s = 0;
  for (size_t j = 0; j < bytes / 8; ++j) s += p[j];
  return s;
}

uint64_t sum_tensor(const shallow::Tensor& t) {
  return touch_bytes(t.data<float>(), size_t(t.numel()) * 4);
}

void Open(benchmark::State& state) {
  const std::string& path = big_file().path;
  double rss_growth = 0;
  for (auto _ : state) {
    const double before = resident_mb();
    shallow::SafetensorsFile file = shallow::read_safetensors(path);
    rss_growth = resident_mb() - before;
    benchmark::DoNotOptimize(file.tensors.size());
  }
  state.counters["rss_mb"] = rss_growth;
}

void OpenReadOne(benchmark::State& state) {
  const std::string& path = big_file().path;
  double rss_growth = 0;
  for (auto _ : state) {
    const double before = resident_mb();
    shallow::SafetensorsFile file = shallow::read_safetensors(path);
    benchmark::DoNotOptimize(sum_tensor(file.tensors.at("blocks.7.weight")));
    rss_growth = resident_mb() - before;
  }
  state.counters["rss_mb"] = rss_growth;
  state.counters["tensor_mb"] = double(kElements * 4) / double(1 << 20);
}

void OpenReadAll(benchmark::State& state) {
  const std::string& path = big_file().path;
  for (auto _ : state) {
    shallow::SafetensorsFile file = shallow::read_safetensors(path);
    uint64_t s = 0;
    for (const auto& [name, t] : file.tensors) s += sum_tensor(t);
    benchmark::DoNotOptimize(s);
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(kFileBytes, benchmark::Counter::kIsIterationInvariantRate);
}

void ReadSyscall(benchmark::State& state) {
  const std::string& path = big_file().path;
  std::vector<char> buffer(size_t(kFileBytes) + 4096);
  for (auto _ : state) {
    const int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) { state.SkipWithError("cannot open the bench file"); return; }
    size_t total = 0;
    ssize_t got = 0;
    while ((got = read(fd, buffer.data() + total, buffer.size() - total)) > 0) total += size_t(got);
    close(fd);
    benchmark::DoNotOptimize(touch_bytes(buffer.data(), total));
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(kFileBytes, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(Open)->Unit(benchmark::kMillisecond)->Iterations(20)->UseRealTime();
BENCHMARK(OpenReadOne)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK(OpenReadAll)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(ReadSyscall)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
