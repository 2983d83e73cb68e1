#pragma once
// Optimizers with PyTorch's exact update rules, gradient clipping and learning-rate schedules.
#include "engine/optim/adam.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/sgd.h"
