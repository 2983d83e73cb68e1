#pragma once
// Elementwise binary ops with broadcasting: each operand comes with its own strides over the
// output shape (stride 0 on a broadcast dim); the output is contiguous.
#include <cstdint>

#include "kernels/cpu/half.h"

namespace shallow::cpu {

// Comparisons (eq ... ge) give 1 or 0 in the operands' type.
enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };

// T is float or double, or bf16/f16 (half.h), computed in f32 and rounded once per element.
template <class T>
void binary(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
            const T* b, const int64_t* b_strides, T* out);

}  // namespace shallow::cpu
