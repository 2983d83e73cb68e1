#include "models/eeg/input_check.h"

namespace shallow::models {

void check_eeg_shape(EegShape shape, const char* encoder) {
  SH_CHECK(shape.channels > 0 && shape.times > 0, encoder,
           ": channels and times must be positive, got ", shape.channels, " channels x ",
           shape.times, " times");
}

void check_eeg_input(const Tensor& x, EegShape shape, const char* encoder) {
  SH_CHECK(x.dim() == 3 && x.size(1) == shape.channels && x.size(2) == shape.times, encoder,
           ": expected an input [N, ", shape.channels, ", ", shape.times,
           "] (trials, channels, times), got shape ", shape_str(x.shape()));
  SH_CHECK(is_floating(x.dtype()), encoder, ": expected a floating input, got ",
           dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
}

}  // namespace shallow::models
