#pragma once
// The CPU's allocator (engine/cpu_allocator.cpp): malloc for small blocks, and blocks of 1 MiB
// and more kept on free for reuse, on 2 MiB (huge) pages.
#include "engine/allocator.h"

namespace shallow {

Allocator& cpu_allocator();

}  // namespace shallow
