#include "engine/autograd.h"

#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops/elementwise.h"

namespace shallow {
namespace {

std::atomic<BackwardObserver> g_backward_observer{nullptr};
thread_local bool grad_mode = true;
}

Node::~Node() {
  // Hold the children before dropping the backward function (whose captured tensors may own
  // the same nodes), then release them one by one, emptying each sole-owned node first.
  std::vector<std::shared_ptr<Node>> pending;
  for (Edge& e : edges)
    if (e.fn) pending.push_back(std::move(e.fn));
  backward = nullptr;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n.use_count() == 1) {
      for (Edge& e : n->edges)
        if (e.fn) pending.push_back(std::move(e.fn));
      n->backward = nullptr;
    }
  }
}

bool grad_enabled() { return grad_mode; }
void set_grad_enabled(bool on) { grad_mode = on; }

bool needs_record(const std::vector<const Tensor*>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* name, const std::vector<const Tensor*>& inputs,
            BackwardFn backward) {
  if (!needs_record(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->edges.reserve(inputs.size());
  for (const Tensor* t : inputs) {
    Edge e;
    if (t && t->defined()) {
      e.shape = t->shape();
      if (t->grad_fn()) e.fn = t->grad_fn();
      else if (t->requires_grad()) e.leaf = t->impl_shared();
    }
    node->edges.push_back(std::move(e));
  }
  node->backward = std::move(backward);
  out.impl_ptr()->grad_fn = std::move(node);
}

namespace {

// Post-order DFS from the root, without recursion (graphs can be deep).
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  visited.insert(root);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->edges.size()) {
      Node* child = node->edges[next++].fn.get();
      if (child && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;  // children before parents
}

void accumulate(Tensor& slot, const Tensor& g) {
  slot = slot.defined() ? add(slot, g) : g;
}

// Whether g is the only handle on its tensor and its tensor alone covers its whole storage:
// then nothing else can see it, and it can become a leaf's .grad as it is.
bool owned_outright(const Tensor& g) {
  return g.impl_shared().use_count() == 1 && g.storage().use_count() == 1 && g.offset() == 0 &&
         g.is_contiguous() && size_t(g.numel()) * dtype_size(g.dtype()) == g.storage()->nbytes();
}

// Adds g into a leaf's .grad. A first gradient that something else may still use (a view of
// another tensor, the seed passed to backward(), the same gradient handed to two inputs) is
// copied, so that updating the .grad in place never reaches it; one owned outright is taken
// (a weight gradient is megabytes, copied on every step otherwise).
void accumulate_leaf(Tensor leaf, Tensor g) {
  if (g.dtype() != leaf.dtype()) g = g.to(leaf.dtype());
  Tensor old = leaf.grad();
  if (old.defined()) leaf.set_grad(add(old, g));
  else leaf.set_grad(owned_outright(g) ? g : g.clone());
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  SH_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    SH_CHECK(root.numel() == 1, "backward: a gradient must be given for a non-scalar output of shape ",
             shape_str(root.shape()));
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  check_same_shape(root, grad, "backward");

  NoGrad no_grad;  // gradients are computed without building a graph of their own
  if (!root.grad_fn()) {  // a leaf: its gradient is the seed itself
    accumulate_leaf(root, grad);
    return;
  }

  std::vector<Node*> order = topological_order(root.grad_fn().get());
  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // nothing flowed into this node
    Tensor g = std::move(found->second);
    grads.erase(found);
    SH_CHECK(node->backward, "backward through ", node->name,
             " a second time: the graph was freed (pass retain_graph=true the first time)");
    const BackwardObserver observer = g_backward_observer.load();
    if (observer) observer(node->name, false);
    std::vector<Tensor> in_grads = node->backward(g);
    // A view op returns a gradient sharing g's storage: let go of g, so that a leaf can take
    // that gradient as its own instead of copying it (a weight reached through weight.t()).
    g = Tensor();
    SH_CHECK(in_grads.size() == node->edges.size(), "internal: ", node->name, " returned ",
             in_grads.size(), " gradients for ", node->edges.size(), " inputs");
    if (!retain_graph) node->backward = nullptr;  // frees what the op saved
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Edge& e = node->edges[i];
      Tensor& gi = in_grads[i];
      if (!e.active() || !gi.defined()) continue;
      SH_CHECK(gi.shape() == e.shape, "internal: ", node->name, " gave a gradient of shape ",
               shape_str(gi.shape()), " for input ", i, " of shape ", shape_str(e.shape));
      if (e.fn) {
        accumulate(grads[e.fn.get()], gi);
      } else {
        accumulate_leaf(Tensor(e.leaf), std::move(gi));
      }
    }
    if (observer) observer(node->name, true);
  }
}

void set_backward_observer(BackwardObserver observer) { g_backward_observer.store(observer); }

}  // namespace shallow
