#pragma once
// Every module of engine/nn: layers with named parameters and buffers, train/eval modes and
// state dicts, as torch.nn.
#include "engine/nn/activation.h"
#include "engine/nn/batch_norm.h"
#include "engine/nn/container.h"
#include "engine/nn/conv.h"
#include "engine/nn/conv_bn.h"
#include "engine/nn/dropout.h"
#include "engine/nn/init.h"
#include "engine/nn/layer_norm.h"
#include "engine/nn/linear.h"
#include "engine/nn/module.h"
#include "engine/nn/multihead_attention.h"
#include "engine/nn/pool.h"
