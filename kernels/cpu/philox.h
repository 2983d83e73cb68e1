#pragma once
// Philox4x32-10 (Salmon et al., 2011): a counter-based generator. The n-th random number
// depends only on (seed, n), so CPU and GPU kernels can draw the same stream in any order.
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SH_HOST_DEVICE __host__ __device__
#else
#define SH_HOST_DEVICE
#endif

namespace shallow::cpu {

struct Philox4 {
  uint32_t v[4];
};

SH_HOST_DEVICE inline Philox4 philox(uint64_t seed, uint64_t counter) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// philox(seed, counter0 + l) for the 16 lanes l at once: out[w][l] is its word w. The rounds
// run lane by lane inside, so that the compiler keeps the 16 lanes in vector registers (the
// 32 x 32 -> 64-bit products are one vector multiply on x86-64); the results are philox's.
inline void philox16(uint64_t seed, uint64_t counter0, uint32_t (&out)[4][16]) {
  uint32_t c0[16], c1[16], c2[16], c3[16];
  for (int l = 0; l < 16; ++l) {
    const uint64_t c = counter0 + uint64_t(l);
    c0[l] = uint32_t(c);
    c1[l] = uint32_t(c >> 32);
    c2[l] = 0;
    c3[l] = 0;
  }
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    for (int l = 0; l < 16; ++l) {
      const uint64_t p0 = uint64_t(0xD2511F53u) * c0[l];
      const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2[l];
      const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = uint32_t(p1);
      c3[l] = uint32_t(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < 16; ++l) {
    out[0][l] = c0[l];
    out[1][l] = c1[l];
    out[2][l] = c2[l];
    out[3][l] = c3[l];
  }
}

// Uniform in [0, 1) from 32 random bits (24 bits of mantissa, exactly representable).
SH_HOST_DEVICE inline float uniform01(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

// Uniform double in [0, 1) from 64 bits (53 bits used).
SH_HOST_DEVICE inline double uniform01_f64(uint32_t hi, uint32_t lo) {
  return double(((uint64_t(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace shallow::cpu
