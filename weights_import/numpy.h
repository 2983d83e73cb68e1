#pragma once
// NumPy's .npy and .npz files.
//
// .npy (versions 1 to 3): a magic string, a header that is a Python dict literal
// ({'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }), then the array's bytes.
// Numeric arrays of every dtype are read (widened where the engine lacks the type, byte-swapped
// when big-endian; Fortran order becomes a column-major view), in place from the memory-mapped
// file where possible. An object array (np.save of a dict, as THINGS-EEG2's preprocessed files
// are stored) holds a pickle, read with NumPy's globals only; so is a bare pickle stream that
// was saved under an .npy name.
// .npz: a zip archive of .npy entries, stored (np.savez) or deflated (np.savez_compressed).
#include <map>
#include <string>

#include "engine/tensor.h"
#include "weights_import/file_bytes.h"
#include "weights_import/tensor_file.h"

namespace shallow {

// A numeric array is the tensor named after the file's stem ("layer_4.npy" -> "layer_4"); a
// pickled object is flattened (dict keys become names) and kept whole in `object`.
TensorFile read_npy(const std::string& path);
TensorFile parse_npy(const FileBytes& bytes, const std::string& array_name);

// The array of a numeric .npy file; throws if the file holds a pickled object.
Tensor read_npy_array(const std::string& path);

// Every entry of an .npz, named by its key (the entry name without ".npy").
TensorFile read_npz(const std::string& path);
TensorFile parse_npz(const FileBytes& bytes);

// Writers: C order, little-endian, version 1 headers (2 when the header needs it).
void write_npy(const std::string& path, const Tensor& tensor);
void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors);

// True when the bytes start with the .npy magic string.
bool looks_like_npy(const uint8_t* data, size_t size);

}  // namespace shallow
