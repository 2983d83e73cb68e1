#pragma once
// Flattens a resolved pickle tree (dicts, lists, tuples; tensors and plain values as leaves)
// into a TensorFile: tensors under dotted names ("state_dict.0.weight"), plain values (numbers,
// strings and lists of them) into the metadata as JSON text.
#include <string>

#include "weights_import/pickle.h"
#include "weights_import/tensor_file.h"

namespace shallow {

// `root_name` names the root when it is itself a tensor or plain value.
void flatten_into(TensorFile& out, const pickle::Pickle& p, const pickle::Object* root, const std::string& root_name);

// JSON text of a plain value (None, bool, numbers, strings, and lists, tuples and dicts of
// them); a tensor or other object appears as its description in a string.
std::string plain_json(const pickle::Pickle& p, const pickle::Object* o);

}  // namespace shallow
