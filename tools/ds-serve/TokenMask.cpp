//===- TokenMask.cpp - which tokens a grammar lets come next --------------===//

#include "TokenMask.h"

#include <algorithm>

namespace dsserve {

VocabTrie::VocabTrie(Tokenizer &tok, int64_t vocab) {
  nodes.emplace_back();
  tokenBytes.resize(size_t(std::max<int64_t>(0, vocab)));
  for (int32_t t = 0; t < int32_t(vocab); ++t) {
    if (tok.isSpecial(t))
      continue;
    std::string b = tok.tokenBytes(t);
    if (b.empty())
      continue;
    int32_t at = 0;
    for (unsigned char c : b) {
      auto &kids = nodes[size_t(at)].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), c,
                                 [](const std::pair<uint8_t, int32_t> &k,
                                    uint8_t v) { return k.first < v; });
      if (it == kids.end() || it->first != c) {
        int32_t child = int32_t(nodes.size());
        // Inserting may move `kids` (nodes grows): insert first.
        kids.insert(it, {c, child});
        nodes.emplace_back();
        at = child;
      } else {
        at = it->second;
      }
    }
    nodes[size_t(at)].tokens.push_back(t);
    tokenBytes[size_t(t)] = std::move(b);
  }
}

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> grammar,
                                     std::shared_ptr<const VocabTrie> vocab,
                                     int64_t eosToken)
    : vocab(std::move(vocab)), matcher(std::move(grammar)), eos(eosToken) {}

void GrammarConstraint::walk(int32_t node, const Matcher &m, uint8_t *mask,
                             int64_t n) {
  for (const auto &[byte, child] : vocab->node(node).children) {
    Matcher next = m;
    if (!next.feed(byte))
      continue; // no token down this branch can be taken
    for (int32_t t : vocab->node(child).tokens)
      if (t < n)
        mask[t] = 1;
    walk(child, next, mask, n);
  }
}

void GrammarConstraint::allowed(const int32_t *output, int64_t n, uint8_t *mask,
                                int64_t vocabSize) {
  for (; consumed < n; ++consumed) {
    int32_t t = output[consumed];
    if (t == eos)
      continue;
    const std::string &b = vocab->bytes(t);
    if (b.empty() || !matcher.feed(b))
      broken = true;
  }
  if (!broken)
    walk(0, matcher, mask, vocabSize);
  if ((broken || matcher.accepting()) && eos >= 0 && eos < vocabSize)
    mask[eos] = 1;
}

} // namespace dsserve
