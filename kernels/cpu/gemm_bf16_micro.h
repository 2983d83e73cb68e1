#pragma once
// The micro-kernels of gemm_bf16 (kernels/cpu/gemm_bf16.h), shared by the driver and the file
// built for AVX512_BF16. Declarations only: that file is compiled with its own instruction-set
// flags, so it must not instantiate inline code that other files also use (the linker could keep
// its AVX-512 copy for everyone).
#include <cstdint>

#include "kernels/cpu/prefetch_region.h"

namespace shallow::cpu::gemm_bf16_detail {

// One MR x NR tile of C in f32: ws[r * ldws + c] = (accumulate ? ws[r * ldws + c] : 0)
//   + sum over p < pairs of  lo(a[p*MR + r]) * lo(b[p*NR + c]) + hi(a[p*MR + r]) * hi(b[p*NR + c]),
// where a word holds two bf16, lo the even k and hi the odd one.
void micro_scalar(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate);

// The same on vdpbf16ps. Callable only where avx512_compiled() and the CPU supports it.
void micro_avx512(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws, int64_t ldws,
                  bool accumulate);

// micro_avx512 that also prefetches `region`, one cache line per pair step.
void micro_avx512_prefetching(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws,
                              int64_t ldws, bool accumulate, const PrefetchRegion& region);

// The 8-row tile (a holds 8 words per pair step; ws gets 8 rows), with a prefetch region as
// micro_avx512_prefetching: C's last rows where 12 would overhang them by much.
constexpr int64_t kShortTileRows = 8;
void micro_avx512_short(int64_t pairs, const uint32_t* a, const uint32_t* b, float* ws,
                        int64_t ldws, bool accumulate, const PrefetchRegion& region);

// Sixteen 32-bit words (bf16 pairs) of each of 16 rows turned around: dst[q * ldd + i] = the
// pair at elements 2 (p0 + q) and 2 (p0 + q) + 1 of rows[i], for q < 16 and i < lanes (at most
// 16; rows past lanes are read but not stored: they may repeat a valid row). The packing of
// both operands is this transposition, 16 words per register instead of one at a time.
void transpose_pairs_avx512(const uint16_t* const* rows, int64_t p0, int64_t lanes, uint32_t* dst,
                            int64_t ldd);

// Whether micro_avx512 was built with the AVX512_BF16 instructions (a stub otherwise).
bool avx512_compiled();

}  // namespace shallow::cpu::gemm_bf16_detail
