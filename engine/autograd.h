#pragma once
// Reverse-mode autograd on a dynamic graph. Each recorded op makes one Node holding edges to
// the nodes (or leaves) of its inputs and a function from the output's gradient to the
// inputs' gradients. backward() walks the nodes in reverse topological order.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace shallow {

// Where an input's gradient goes: into another node, or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> fn;          // set when the input was made by a recorded op
  std::shared_ptr<TensorImpl> leaf;  // set when the input is a leaf that requires grad
  Shape shape;                       // the input's shape, to check what backward returns
  bool active() const { return fn || leaf; }
};

// Returns one gradient per input, in order; an undefined Tensor means "no gradient".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;         // the op's name, for errors and debugging
  std::vector<Edge> edges;  // one per input of the op
  BackwardFn backward;      // cleared after use unless the graph is retained

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Frees the graph below without recursion: a chain of nested destructors as long as the
  // graph is deep would overflow the stack.
  ~Node();
};

// Grad mode is per thread and on by default; NoGrad turns it off for a scope.
bool grad_enabled();
void set_grad_enabled(bool on);

class NoGrad {
 public:
  NoGrad() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGrad() { set_grad_enabled(prev_); }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// True when an op on these inputs must be recorded.
bool needs_record(const std::vector<const Tensor*>& inputs);
inline bool needs_record(std::initializer_list<const Tensor*> inputs) {
  return needs_record(std::vector<const Tensor*>(inputs));
}

// Attaches a node to `out` when grad mode is on and any input requires grad. The backward
// function may capture inputs; it must capture outputs only through detach() (no cycles).
void record(Tensor& out, const char* name, const std::vector<const Tensor*>& inputs,
            BackwardFn backward);

// The walk behind Tensor::backward().
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// A function called around each node's backward during run_backward (finished false before,
// true once its gradients are accumulated), for profilers; nullptr (the default) calls nothing.
using BackwardObserver = void (*)(const std::string& node_name, bool finished);
void set_backward_observer(BackwardObserver observer);

}  // namespace shallow
