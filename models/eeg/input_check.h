#pragma once
// Checks shared by the EEG encoders: the sizes they are built for and the input they are given.
#include "engine/tensor.h"
#include "models/eeg/encoder.h"

namespace shallow::models {

// Throws unless both sizes are positive; `encoder` names the caller.
void check_eeg_shape(EegShape shape, const char* encoder);

// Throws unless x is a floating [N, C, T] batch with the C and T the encoder was built for.
void check_eeg_input(const Tensor& x, EegShape shape, const char* encoder);

}  // namespace shallow::models
