// OpenBLAS's cblas_sgemm at given shapes, as the reference the engine's GEMM is compared with.
// Prints one JSON object per line: the shape, the best time over the repetitions and its GFLOP/s.
//
//   openblas_gemm [--threads N] [--repetitions R] [--min-time S] SHAPE...
//
// SHAPE is TRANS:MxNxK, TRANS one of NN NT TN TT (op(A) is M x K, op(B) is K x N; a T means the
// operand is stored transposed, as the engine's gemm takes it), e.g. NT:1576x2304x768.
// Built only where OpenBLAS is found (bench/CMakeLists.txt).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Shape {
  bool trans_a = false, trans_b = false;
  long m = 0, n = 0, k = 0;
};

bool parse_shape(const char* text, Shape* s) {
  char ta = 0, tb = 0;
  int used = 0;
  if (std::sscanf(text, "%c%c:%ldx%ldx%ld%n", &ta, &tb, &s->m, &s->n, &s->k, &used) != 5 ||
      text[used] != '\0')
    return false;
  if ((ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T')) return false;
  s->trans_a = ta == 'T', s->trans_b = tb == 'T';
  return s->m > 0 && s->n > 0 && s->k > 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best seconds per call: each repetition times as many calls as fill `min_time`.
double best_time(const Shape& s, int repetitions, double min_time) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> a(size_t(s.m * s.k)), b(size_t(s.k * s.n)), c(size_t(s.m * s.n));
  for (float& v : a) v = normal(rng);
  for (float& v : b) v = normal(rng);
  // Row-major storage: op(A) = A^T means A is stored K x M, so its leading dimension is M.
  const long lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans,
                s.trans_b ? CblasTrans : CblasNoTrans, int(s.m), int(s.n), int(s.k), 1.0f,
                a.data(), int(lda), b.data(), int(ldb), 0.0f, c.data(), int(s.n));
  };
  call();  // warm-up: the library's buffers and threads
  double best = 1e30;
  for (int r = 0; r < repetitions; ++r) {
    long calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    do {
      call();
      ++calls;
    } while (seconds_since(t0) < min_time);
    best = std::min(best, seconds_since(t0) / double(calls));
  }
  return best;
}

int usage() {
  std::fprintf(stderr,
               "usage: openblas_gemm [--threads N] [--repetitions R] [--min-time S] TRANS:MxNxK...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, repetitions = 3;
  double min_time = 0.2;
  std::vector<Shape> shapes;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--repetitions") && has_value) {
      repetitions = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--min-time") && has_value) {
      min_time = std::atof(argv[++i]);
    } else {
      Shape s;
      if (!parse_shape(argv[i], &s)) {
        std::fprintf(stderr, "error: bad shape '%s'\n", argv[i]);
        return usage();
      }
      shapes.push_back(s);
    }
  }
  if (shapes.empty()) return usage();
  if (threads > 0) openblas_set_num_threads(threads);

  for (const Shape& s : shapes) {
    const double t = best_time(s, repetitions, min_time);
    std::printf("{\"trans\": \"%c%c\", \"m\": %ld, \"n\": %ld, \"k\": %ld, \"threads\": %d, "
                "\"seconds\": %.6g, \"gflops\": %.2f, \"core\": \"%s\", \"config\": \"%s\"}\n",
                s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N', s.m, s.n, s.k,
                openblas_get_num_threads(), t, 2.0 * double(s.m) * double(s.n) * double(s.k) / t * 1e-9,
                openblas_get_corename(), openblas_get_config());
    std::fflush(stdout);
  }
  return 0;
}
