#pragma once
// NumPy objects inside pickles: arrays (numpy.core.multiarray._reconstruct plus BUILD, or
// protocol 5's numpy.core.numeric._frombuffer), scalars (numpy.core.multiarray.scalar) and
// dtypes, under both module paths (numpy.core before NumPy 2, numpy._core since).
#include <set>
#include <string>

#include "weights_import/pickle.h"

namespace shallow {

// The globals the rewrite below understands.
const std::set<std::string>& numpy_globals();

// Rewrites a NumPy call node in place: a numeric array becomes a tensor, an object array its
// list of items (a 0-d one, its single item), a text array a list of strings, a scalar a plain
// number. Returns false, leaving `o` alone, when `o` is not a NumPy call. `where` names the
// file in error messages.
bool resolve_numpy_object(pickle::Pickle& p, pickle::Object* o, const std::string& where);

// Resolves every NumPy object reachable from the root of p.
void resolve_numpy_objects(pickle::Pickle& p);

}  // namespace shallow
