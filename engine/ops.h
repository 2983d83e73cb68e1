#pragma once
// Everything an engine user needs: tensors, autograd and every op.
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "engine/threads.h"
