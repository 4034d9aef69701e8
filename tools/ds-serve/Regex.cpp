//===- Regex.cpp - regular expressions as automata over code points -------===//
//
// Three steps: the pattern is parsed into a tree (RegexSyntax.h), the tree
// becomes a Thompson automaton with epsilon edges and edges labelled by
// sets of code points (Nfa), and subset construction turns that into a
// table over classes of code points that every set treats alike
// (RegexBuilder). States from which no match can be reached are then
// dropped (kDead), so a live state always has a way to a match: what the
// token masks rely on.
//
//===----------------------------------------------------------------------===//

#include "Regex.h"
#include "RegexSyntax.h"

#include <algorithm>
#include <map>

namespace dsserve {

using namespace regex;

namespace {

constexpr int kMaxNfaStates = 50000;
// Subset entries times classes examined while building the table: about
// 0.1 s of a core at most.
constexpr size_t kMaxWork = size_t(8) << 20;

/// Thompson's construction: edges labelled by sets, and epsilon edges.
class Nfa {
public:
  struct State {
    std::vector<std::pair<int, int>> edges; // (set, to)
    std::vector<int> eps;
  };
  std::vector<State> states;
  bool tooBig = false;

  int newState() {
    if (states.size() >= size_t(kMaxNfaStates))
      tooBig = true;
    states.emplace_back();
    return int(states.size()) - 1;
  }
  /// The fragment of `node` from state `from`; returns its end state.
  int build(const std::vector<Tree> &tree, int node, int from) {
    if (tooBig)
      return from;
    const Tree &t = tree[size_t(node)];
    switch (t.kind) {
    case Tree::Set: {
      int end = newState();
      states[size_t(from)].edges.push_back({t.set, end});
      return end;
    }
    case Tree::Concat: {
      int at = from;
      for (int k : t.kids)
        at = build(tree, k, at);
      return at;
    }
    case Tree::Alt: {
      int end = newState();
      for (int k : t.kids) {
        int s = newState();
        states[size_t(from)].eps.push_back(s);
        int e = build(tree, k, s);
        states[size_t(e)].eps.push_back(end);
      }
      return end;
    }
    case Tree::Repeat: {
      int at = from;
      for (int64_t i = 0; i < t.min && !tooBig; ++i)
        at = build(tree, t.kids[0], at);
      if (t.max < 0) { // a loop back to where it may also leave
        int loop = newState();
        states[size_t(at)].eps.push_back(loop);
        int e = build(tree, t.kids[0], loop);
        states[size_t(e)].eps.push_back(loop);
        return loop;
      }
      int end = newState();
      for (int64_t i = t.min; i < t.max && !tooBig; ++i) {
        states[size_t(at)].eps.push_back(end);
        at = build(tree, t.kids[0], at);
      }
      states[size_t(at)].eps.push_back(end);
      return end;
    }
    case Tree::Start:
    case Tree::End:
      return from;
    }
    return from;
  }
};

} // namespace

/// Subset construction over the classes of code points.
class RegexBuilder {
public:
  RegexBuilder(const Nfa &nfa, const std::vector<CharSet> &sets, int start,
               int accept)
      : nfa(nfa), sets(sets), nfaStart(start), nfaAccept(accept) {}

  std::shared_ptr<const Regex> build(std::string key, std::string &error) {
    auto rx = std::make_shared<Regex>();
    rx->sourceKey = std::move(key);
    makeClasses(*rx);
    std::vector<std::vector<int>> subsets;
    std::map<std::vector<int>, int32_t> ids;
    auto idOf = [&](std::vector<int> subset) -> int32_t {
      if (subset.empty())
        return Regex::kDead;
      auto [it, fresh] = ids.insert({subset, int32_t(subsets.size())});
      if (fresh)
        subsets.push_back(std::move(subset));
      return it->second;
    };
    rx->startState = idOf(closure({nfaStart}));
    const size_t classes = size_t(rx->classes);
    // Bounds on the table and on the work of building it (the subsets'
    // sizes and the states their closures visit, summed): a request's
    // pattern must not hold the server up.
    auto tooMuch = [&] {
      error = "the pattern needs more than " +
              std::to_string(Regex::kMaxStates) +
              " automaton states or too much work to build them (an "
              "anchored or shorter pattern may fit)";
      return nullptr;
    };
    for (size_t d = 0; d < subsets.size(); ++d) {
      work += subsets[d].size() * classes;
      if (subsets.size() > size_t(Regex::kMaxStates) ||
          subsets.size() * classes > (size_t(1) << 22) || work > kMaxWork)
        return tooMuch();
      rx->accept.push_back(
          std::binary_search(subsets[d].begin(), subsets[d].end(), nfaAccept));
      for (size_t c = 0; c < classes; ++c) {
        std::vector<int> targets;
        for (int q : subsets[d])
          for (const auto &[set, to] : nfa.states[size_t(q)].edges)
            if (covers[size_t(set)][c])
              targets.push_back(to);
        rx->next.push_back(idOf(closure(std::move(targets))));
        if (work > kMaxWork) // closures of many epsilon edges
          return tooMuch();
      }
    }
    if (!dropDeadEnds(*rx)) {
      error = "the pattern matches no string";
      return nullptr;
    }
    measureToEnds(*rx);
    return rx;
  }

private:
  /// The states reachable by epsilon edges, sorted; only those that read
  /// a character or accept tell subsets apart. Each state visited and
  /// epsilon edge followed counts as work (a pattern of many empty
  /// alternatives makes closures, not subsets, the cost), and the marks
  /// of what was seen are reused, not cleared for every call.
  std::vector<int> closure(std::vector<int> from) {
    if (seen.size() != nfa.states.size())
      seen.assign(nfa.states.size(), 0);
    if (++mark == 0) { // wrapped: every old mark could read as this one
      std::fill(seen.begin(), seen.end(), 0);
      mark = 1;
    }
    std::vector<int> out;
    while (!from.empty()) {
      int q = from.back();
      from.pop_back();
      ++work;
      if (seen[size_t(q)] == mark)
        continue;
      seen[size_t(q)] = mark;
      const Nfa::State &s = nfa.states[size_t(q)];
      if (!s.edges.empty() || q == nfaAccept)
        out.push_back(q);
      from.insert(from.end(), s.eps.begin(), s.eps.end());
    }
    std::sort(out.begin(), out.end());
    work += out.size();
    return out;
  }

  void makeClasses(Regex &rx) {
    std::vector<uint32_t> b{0};
    for (const CharSet &s : sets)
      for (const auto &[lo, hi] : s) {
        b.push_back(lo);
        if (hi < kMaxCodePoint)
          b.push_back(hi + 1);
      }
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    rx.classes = int32_t(b.size());
    b.push_back(kMaxCodePoint + 1);
    rx.bounds = std::move(b);
    for (uint32_t c = 0; c < 128; ++c)
      rx.asciiClass[c] =
          int32_t(std::upper_bound(rx.bounds.begin(), rx.bounds.end(), c) -
                  rx.bounds.begin() - 1);
    covers.assign(sets.size(), std::vector<uint8_t>(size_t(rx.classes), 0));
    for (size_t i = 0; i < sets.size(); ++i)
      for (const auto &[lo, hi] : sets[i])
        for (int32_t c = rx.classOf(lo); c <= rx.classOf(hi); ++c)
          covers[i][size_t(c)] = 1;
  }

  /// States with no way to an accepting one lead nowhere: kDead. False
  /// when that is the start. A search back from the accepting states
  /// (linear in the table, where sweeping it until nothing changed took a
  /// sweep per state of the longest chain).
  static bool dropDeadEnds(Regex &rx) {
    size_t n = rx.accept.size(), classes = size_t(rx.classes);
    std::vector<std::vector<int32_t>> pred(n);
    for (size_t s = 0; s < n; ++s)
      for (size_t c = 0; c < classes; ++c)
        if (int32_t t = rx.next[s * classes + c]; t != Regex::kDead)
          pred[size_t(t)].push_back(int32_t(s));
    std::vector<uint8_t> live(rx.accept.begin(), rx.accept.end());
    std::vector<int32_t> queue;
    for (size_t s = 0; s < n; ++s)
      if (live[s])
        queue.push_back(int32_t(s));
    while (!queue.empty()) {
      int32_t t = queue.back();
      queue.pop_back();
      for (int32_t s : pred[size_t(t)])
        if (!live[size_t(s)]) {
          live[size_t(s)] = 1;
          queue.push_back(s);
        }
    }
    for (int32_t &t : rx.next)
      if (t != Regex::kDead && !live[size_t(t)])
        t = Regex::kDead;
    return rx.startState != Regex::kDead && live[size_t(rx.startState)];
  }

  /// Regex::shortest and ::longest: a breadth-first search back from the
  /// accepting states, and a depth-first one for the longest way (a loop
  /// on it makes it unbounded).
  static void measureToEnds(Regex &rx) {
    size_t n = rx.accept.size(), classes = size_t(rx.classes);
    std::vector<std::vector<int32_t>> succ(n), pred(n);
    for (size_t s = 0; s < n; ++s)
      for (size_t c = 0; c < classes; ++c)
        if (int32_t t = rx.next[s * classes + c]; t != Regex::kDead)
          succ[s].push_back(t);
    for (size_t s = 0; s < n; ++s) {
      std::sort(succ[s].begin(), succ[s].end());
      succ[s].erase(std::unique(succ[s].begin(), succ[s].end()), succ[s].end());
      for (int32_t t : succ[s])
        pred[size_t(t)].push_back(int32_t(s));
    }
    rx.shortest.assign(n, INT64_MAX);
    std::vector<int32_t> queue;
    for (size_t s = 0; s < n; ++s)
      if (rx.accept[s]) {
        rx.shortest[s] = 0;
        queue.push_back(int32_t(s));
      }
    for (size_t i = 0; i < queue.size(); ++i)
      for (int32_t p : pred[size_t(queue[i])])
        if (rx.shortest[size_t(p)] == INT64_MAX) {
          rx.shortest[size_t(p)] = rx.shortest[size_t(queue[i])] + 1;
          queue.push_back(p);
        }
    // Iterative depth-first search: 0 unseen, 1 on the path, 2 done.
    // Every state searched reaches an end (dead ones are not searched, and
    // no transition leads to them).
    rx.longest.assign(n, -1);
    std::vector<uint8_t> color(n, 0);
    auto longer = [](int64_t &best, int64_t after) {
      best = std::max(best, after == INT64_MAX ? INT64_MAX : after + 1);
    };
    for (size_t root = 0; root < n; ++root) {
      if (color[root] || rx.shortest[root] == INT64_MAX)
        continue;
      std::vector<std::pair<int32_t, size_t>> stack;
      auto enter = [&](int32_t s) {
        color[size_t(s)] = 1;
        rx.longest[size_t(s)] = rx.accept[size_t(s)] ? 0 : -1;
        stack.push_back({s, 0});
      };
      enter(int32_t(root));
      while (!stack.empty()) {
        int32_t s = stack.back().first;
        size_t k = stack.back().second++;
        if (k < succ[size_t(s)].size()) {
          int32_t t = succ[size_t(s)][k];
          if (color[size_t(t)] == 1)
            rx.longest[size_t(s)] = INT64_MAX; // a loop on the way
          else if (color[size_t(t)] == 2)
            longer(rx.longest[size_t(s)], rx.longest[size_t(t)]);
          else
            enter(t);
          continue;
        }
        color[size_t(s)] = 2;
        stack.pop_back();
        if (!stack.empty())
          longer(rx.longest[size_t(stack.back().first)], rx.longest[size_t(s)]);
      }
    }
  }

  const Nfa &nfa;
  const std::vector<CharSet> &sets;
  int nfaStart, nfaAccept;
  std::vector<std::vector<uint8_t>> covers; // set x class
  size_t work = 0;                          // against kMaxWork
  std::vector<uint32_t> seen;               // closure's marks
  uint32_t mark = 0;
};

std::shared_ptr<const Regex> Regex::compile(const std::string &pattern,
                                            Mode mode, std::string &error) {
  ParsedPattern ps;
  if (!parsePattern(pattern, mode, ps, error))
    return nullptr;
  Nfa nfa;
  int start = nfa.newState();
  int accept = nfa.build(ps.nodes, ps.root, start);
  if (nfa.tooBig) {
    error = "the pattern is too large (more than " +
            std::to_string(kMaxNfaStates) +
            " automaton states before "
            "determinization)";
    return nullptr;
  }
  return RegexBuilder(nfa, ps.sets, start, accept)
      .build((mode == Mode::Whole ? "whole:" : "search:") + pattern, error);
}

int32_t Regex::classOf(uint32_t cp) const {
  if (cp < 128)
    return asciiClass[cp];
  return int32_t(std::upper_bound(bounds.begin(), bounds.end(), cp) -
                 bounds.begin() - 1);
}

bool Regex::anyIn(int32_t state, uint32_t lo, uint32_t hi, int64_t minMore,
                  int64_t maxMore) const {
  hi = std::min(hi, kMaxCodePoint);
  const int32_t *row = &next[size_t(state) * size_t(classes)];
  for (int32_t c = classOf(lo), e = lo > hi ? c - 1 : classOf(hi); c <= e; ++c)
    if (row[c] != kDead && canEnd(row[c], minMore, maxMore))
      return true;
  return false;
}

bool regexTakeByte(const Regex &rx, int32_t &state, int32_t &cp, int32_t &owed,
                   uint8_t byte, int64_t minMore, int64_t maxMore) {
  if (owed > 0) {
    if ((byte & 0xC0) != 0x80)
      return false;
    cp = (cp << 6) | (byte & 0x3F);
    --owed;
  } else if (byte < 0x80) {
    cp = byte;
  } else if (byte >= 0xC2 && byte <= 0xF4) {
    owed = byte < 0xE0 ? 1 : byte < 0xF0 ? 2 : 3;
    cp = byte & (byte < 0xE0 ? 0x1F : byte < 0xF0 ? 0x0F : 0x07);
  } else {
    return false;
  }
  if (owed > 0) { // some character these bytes can still become
    uint32_t lo = uint32_t(cp) << (6 * owed);
    return rx.anyIn(state, lo, lo | ((1u << (6 * owed)) - 1), minMore, maxMore);
  }
  int32_t next = rx.step(state, uint32_t(cp));
  if (next == Regex::kDead || !rx.canEnd(next, minMore, maxMore))
    return false;
  state = next;
  return true;
}

} // namespace dsserve
