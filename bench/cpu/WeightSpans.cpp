//===- WeightSpans.cpp - a checkpoint's decode weights as read spans ------===//
#include "WeightSpans.h"

#include <algorithm>
#include <cstdint>

using namespace dsbench;

namespace {

bool isEmbedding(const std::string &name) {
  static const std::string suffix = "embed_tokens.weight";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// [begin, end) rounded inward to whole 8-byte words, appended when any
/// word is left.
void addSpan(const uint8_t *begin, const uint8_t *end, WeightSpans &out) {
  uintptr_t b = (reinterpret_cast<uintptr_t>(begin) + 7) & ~uintptr_t(7);
  uintptr_t e = reinterpret_cast<uintptr_t>(end) & ~uintptr_t(7);
  if (e <= b)
    return;
  out.spans.push_back(
      {reinterpret_cast<const uint64_t *>(b), int64_t((e - b) / 8)});
  out.bytes += int64_t(e - b);
}

} // namespace

bool dsbench::decodeWeightSpans(const std::string &dir, WeightSpans &out,
                                std::string &error) {
  out = WeightSpans();
  out.checkpoint = dsrt::Checkpoint::open(dir, error);
  if (!out.checkpoint)
    return false;
  for (const auto &file : out.checkpoint->mappedFiles()) {
    std::vector<const dsrt::TensorView *> order;
    for (const dsrt::TensorView &t : file->tensors())
      if (t.nbytes && !isEmbedding(t.name))
        order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const dsrt::TensorView *a, const dsrt::TensorView *b) {
                return a->data < b->data;
              });
    const uint8_t *begin = nullptr, *end = nullptr;
    for (const dsrt::TensorView *t : order) {
      if (t->data != end) {
        addSpan(begin, end, out);
        begin = t->data;
      }
      end = t->data + t->nbytes;
    }
    addSpan(begin, end, out);
  }
  return true;
}
