// One training epoch of an EEG encoder (EEGProject unless --encoder names another of
// models/eeg/registry.cpp) with the contrastive head on THINGS-EEG2-sized random data
// (16540 trials x 17 channels x 250 times, image features of 1024, batch 1024 with the last
// batch partial, AdamW lr 1e-4 and weight decay 1e-4 as the paper), in seconds per epoch.
// bench/compare_eeg_epoch.py runs it beside the same epoch in PyTorch and prints the ratio.
//
//   bench_eeg_epoch [--encoder NAME] [--threads N] [--epochs N] [--samples N] [--channels C]
//                   [--times T] [--batch B] [--image-dim D] [--device cpu|cuda|cuda:N]
//                   [--breakdown] [Google Benchmark flags]
//
// On a CUDA device the data, the model and the optimizer's state live on the device; the epoch's
// shuffled order is drawn on the host and each batch's rows sent with a queued copy, and the
// host waits for the device once per epoch (reading the last loss), as a PyTorch loop that logs
// once per epoch.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda/api.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/contrastive.h"
#include "models/eeg/encoder.h"

namespace {

using namespace shallow;

struct Config {
  int64_t samples = 16540, channels = 17, times = 250, batch = 1024, image_dim = 1024;
  int64_t epochs = 1;
  int threads = 0;  // 0: the engine's default
  Device device = Device::cpu();
  std::string encoder = "eegproject";
  bool breakdown = false;  // --breakdown: print print_step_breakdown's table first
};

struct Setup {
  Tensor eeg, image;
  std::shared_ptr<models::EegEncoder> encoder;
  std::shared_ptr<models::ContrastiveHead> head;
  std::unique_ptr<optim::AdamW> opt;
  Generator shuffle{7};
};

// The loss stays where it was computed: reading it would make the host wait for the device.
Tensor train_step(Setup& s, const Tensor& rows) {
  const Tensor x = index_select(s.eeg, 0, rows), y = index_select(s.image, 0, rows);
  const Tensor loss = s.head->loss(s.head->embed_eeg(s.encoder->forward(x)), s.head->embed_image(y));
  s.opt->zero_grad();
  loss.backward();
  s.opt->step();
  return loss.detach();
}

// Time per backward node, summed by the node's name (on a GPU, the device waited for before
// and after each one): which ops the backward's time goes to.
struct NodeTimes {
  Device device = Device::cuda(0);
  std::map<std::string, std::pair<double, int>> seconds_and_calls;
  std::chrono::steady_clock::time_point started;
};
NodeTimes g_node_times;

void time_node(const std::string& name, bool finished) {
  if (g_node_times.device.is_cuda()) cuda_synchronize(g_node_times.device.index);
  const auto now = std::chrono::steady_clock::now();
  if (!finished) {
    g_node_times.started = now;
    return;
  }
  auto& [seconds, calls] = g_node_times.seconds_and_calls[name];
  seconds += std::chrono::duration<double>(now - g_node_times.started).count();
  ++calls;
}

// Where a training step's time goes, printed to stderr: for each phase (the batch's rows and
// the forward with the loss, the backward, the optimizer), the host's time to queue it and the
// time until the device has finished it, with the device idle before each phase (on the CPU
// both are the same). On a GPU, a phase whose queueing takes about as long as its completion
// is bound by the host (launches, the engine's bookkeeping), not by the kernels.
void print_step_breakdown(Setup& s, int64_t batch, Device device) {
  using clock = std::chrono::steady_clock;
  const int64_t n = s.eeg.size(0), steps = 20;
  const Tensor order = randperm(n, &s.shuffle);
  double queued[3] = {0, 0, 0}, done[3] = {0, 0, 0};
  auto sync = [&] {
    if (device.is_cuda()) cuda_synchronize(device.index);
  };
  auto phase = [&](int i, auto&& work) {
    sync();
    const auto t0 = clock::now();
    work();
    const auto t1 = clock::now();
    sync();
    const auto t2 = clock::now();
    queued[i] += std::chrono::duration<double>(t1 - t0).count();
    done[i] += std::chrono::duration<double>(t2 - t0).count();
  };
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t start = (step * batch) % std::max<int64_t>(1, n - batch + 1);
    const Tensor rows = order.slice(0, start, std::min(n, start + batch));
    Tensor loss;
    phase(0, [&] {
      const Tensor x = index_select(s.eeg, 0, rows), y = index_select(s.image, 0, rows);
      loss = s.head->loss(s.head->embed_eeg(s.encoder->forward(x)), s.head->embed_image(y));
    });
    phase(1, [&] {
      s.opt->zero_grad();
      loss.backward();
    });
    phase(2, [&] { s.opt->step(); });
  }
  // The backward again, node by node.
  g_node_times = NodeTimes{device, {}, {}};
  set_backward_observer(time_node);
  for (int64_t step = 0; step < steps; ++step) {
    const Tensor rows = order.slice(0, 0, std::min(n, batch));
    const Tensor x = index_select(s.eeg, 0, rows), y = index_select(s.image, 0, rows);
    const Tensor loss = s.head->loss(s.head->embed_eeg(s.encoder->forward(x)), s.head->embed_image(y));
    s.opt->zero_grad();
    loss.backward();
  }
  set_backward_observer(nullptr);
  s.opt->zero_grad();

  const char* names[3] = {"rows + forward + loss", "backward", "optimizer step"};
  std::fprintf(stderr, "step breakdown over %lld steps (ms per step: host queueing / until done):\n",
               (long long)steps);
  for (int i = 0; i < 3; ++i)
    std::fprintf(stderr, "  %-22s %8.3f / %8.3f\n", names[i], 1e3 * queued[i] / steps,
                 1e3 * done[i] / steps);
  std::fprintf(stderr, "backward nodes, each alone (ms per step, calls per step):\n");
  for (const auto& [name, t] : g_node_times.seconds_and_calls)
    std::fprintf(stderr, "  %-28s %8.3f %4d\n", name.c_str(), 1e3 * t.first / steps,
                 int(t.second / steps));
}

// A shuffled pass over every trial, as a PyTorch DataLoader with shuffle=True, drop_last=False.
double train_epoch(Setup& s, int64_t batch) {
  const int64_t n = s.eeg.size(0);
  // The order stays on the host: index_select checks host indices without waiting for the GPU
  // and sends them with a queued copy (indices already on a GPU would be read back to check).
  const Tensor order = randperm(n, &s.shuffle);
  Tensor last;
  for (int64_t start = 0; start < n; start += batch)
    last = train_step(s, order.slice(0, start, std::min(n, start + batch)));
  return last.item();
}

void run(benchmark::State& state, const Config& c) {
  if (c.threads > 0) set_num_threads(c.threads);
  Setup s;
  Generator data(1);
  s.eeg = randn({c.samples, c.channels, c.times}, DType::f32, &data);
  s.image = randn({c.samples, c.image_dim}, DType::f32, &data);
  s.encoder = models::make_eeg_encoder(c.encoder, {c.channels, c.times});
  s.head = std::make_shared<models::ContrastiveHead>(models::ContrastiveConfig{
      .eeg_dim = s.encoder->embed_dim(), .image_dim = c.image_dim, .shared_dim = 1024});
  if (c.device != Device::cpu()) {  // before the optimizer, which keeps state beside the parameters
    s.eeg = s.eeg.to(c.device);
    s.image = s.image.to(c.device);
    s.encoder->to(c.device);
    s.head->to(c.device);
  }
  std::vector<Tensor> params = s.encoder->parameters();
  for (const Tensor& p : s.head->parameters()) params.push_back(p);
  s.opt = std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = 1e-4, .weight_decay = 1e-4});
  // One step first, untimed: allocations and the optimizer's state, as the comparison does.
  train_step(s, Tensor::arange(std::min(c.batch, c.samples))).item();

  if (c.breakdown) print_step_breakdown(s, c.batch, c.device);

  double loss = 0;
  for (auto _ : state) loss = train_epoch(s, c.batch);
  state.counters["threads"] = num_threads();
  state.counters["cuda"] = c.device.is_cuda() ? 1 : 0;
  if (c.device.is_cuda())
    state.counters["peak_device_MiB"] = double(memory_stats(c.device).peak_bytes) / (1 << 20);
  state.counters["samples/s"] = benchmark::Counter(double(c.samples), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["last_loss"] = loss;
}

// Takes "--name value" out of argv (what is left goes to Google Benchmark).
bool take_string_flag(int& argc, char** argv, const char* name, std::string* value) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) != 0) continue;
    *value = argv[i + 1];
    for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];  // argv[argc] is the null
    argc -= 2;
    return true;
  }
  return false;
}

// The same for a positive integer.
bool take_flag(int& argc, char** argv, const char* name, int64_t* value) {
  std::string text;
  if (!take_string_flag(argc, argv, name, &text)) return false;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "error: %s needs a positive integer, got '%s'\n", name, text.c_str());
    std::exit(2);
  }
  *value = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  int64_t threads = 0;
  take_flag(argc, argv, "--threads", &threads);
  take_flag(argc, argv, "--epochs", &c.epochs);
  take_flag(argc, argv, "--samples", &c.samples);
  take_flag(argc, argv, "--channels", &c.channels);
  take_flag(argc, argv, "--times", &c.times);
  take_flag(argc, argv, "--batch", &c.batch);
  take_flag(argc, argv, "--image-dim", &c.image_dim);
  c.threads = int(threads);
  for (int i = 1; i < argc; ++i) {  // --breakdown
    if (std::strcmp(argv[i], "--breakdown") != 0) continue;
    c.breakdown = true;
    for (int j = i; j + 1 <= argc; ++j) argv[j] = argv[j + 1];
    --argc;
    break;
  }
  std::string device_name;
  if (take_string_flag(argc, argv, "--device", &device_name)) {
    try {
      c.device = Device::parse(device_name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: --device: %s\n", e.what());
      return 2;
    }
  }
  take_string_flag(argc, argv, "--encoder", &c.encoder);
  const std::vector<std::string> known = models::eeg_encoder_names();
  if (std::find(known.begin(), known.end(), c.encoder) == known.end()) {
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    std::fprintf(stderr, "error: --encoder: unknown encoder '%s' (known: %s)\n", c.encoder.c_str(),
                 list.c_str());
    return 2;
  }

  // EEGProject keeps the name it always had, so that earlier results line up.
  const std::string model = c.encoder == "eegproject" ? "EegProject" : "Eeg_" + c.encoder + "_";
  const std::string name = model + (c.device.is_cuda() ? "EpochCuda/" : "Epoch/") +
                           std::to_string(c.samples) + "x" + std::to_string(c.channels) + "x" +
                           std::to_string(c.times) + "/batch:" + std::to_string(c.batch);
  benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& st) { run(st, c); })
      ->Iterations(c.epochs)
      ->Unit(benchmark::kSecond)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
