//===- TokenMask.cpp - which tokens a grammar lets come next --------------===//

#include "TokenMask.h"

#include <algorithm>

namespace dsserve {
namespace {

/// Whether a JSON string may take `b` where a character starts.
bool plainInString(const std::string &b) {
  int owed = 0; // UTF-8 continuation bytes
  for (unsigned char c : b) {
    if (owed) {
      if ((c & 0xC0) != 0x80)
        return false;
      --owed;
    } else if (c == '"' || c == '\\' || c < 0x20 || (c >= 0x80 && c < 0xC2) ||
               c > 0xF4) {
      return false;
    } else if (c >= 0x80) {
      owed = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    }
  }
  return true;
}

} // namespace

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
    if (plainInString(b)) {
      plain.push_back(t);
      plainChars.push_back(int32_t(std::count_if(
          b.begin(), b.end(), [](char c) { return (c & 0xC0) != 0x80; })));
    }
    tokenBytes[size_t(t)] = std::move(b);
  }
  // Children come after their parents: fold from the leaves up.
  plainSubtree.assign(nodes.size(), 1);
  for (size_t i = nodes.size(); i-- > 0;) {
    for (int32_t t : nodes[i].tokens)
      if (!plainInString(tokenBytes[size_t(t)]))
        plainSubtree[i] = 0;
    for (const auto &[byte, child] : nodes[i].children)
      if (!plainSubtree[size_t(child)])
        plainSubtree[i] = 0;
  }
}

std::shared_ptr<const RegexReach>
ReachCache::find(const std::string &regex, bool inString, int32_t state) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = entries.find({regex, inString, state});
  return it == entries.end() ? nullptr : it->second;
}

void ReachCache::insert(const std::string &regex, bool inString, int32_t state,
                        std::shared_ptr<const RegexReach> reach) {
  int64_t size = int64_t(reach->tokens.size() + reach->exits.size());
  std::lock_guard<std::mutex> lock(mutex);
  if (held + size > kMaxTokens) { // full: start again (reaches in use live
    entries.clear();              // on in their holders' hands)
    held = 0;
  }
  if (entries.emplace(std::make_tuple(regex, inString, state), std::move(reach))
          .second)
    held += size;
}

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> grammar,
                                     std::shared_ptr<const VocabTrie> vocab,
                                     int64_t eosToken)
    : vocab(std::move(vocab)), matcher(std::move(grammar)), eos(eosToken) {}

void GrammarConstraint::walk(int32_t node, size_t depth, uint8_t *mask,
                             int64_t n, bool skipPlain) {
  // One matcher per depth, assigned from its parent's: their buffers are
  // reused from branch to branch, so the walk allocates little.
  if (scratch.size() <= depth + 1)
    scratch.resize(depth + 2, scratch[0]);
  for (const auto &[byte, child] : vocab->node(node).children) {
    if (skipPlain && vocab->plainBelow(child))
      continue; // all set already
    Matcher &next = scratch[depth + 1];
    next = scratch[depth];
    if (!next.advance(byte))
      continue; // no token down this branch can be taken
    for (int32_t t : vocab->node(child).tokens)
      if (t < n)
        mask[t] = 1;
    walk(child, depth + 1, mask, n, skipPlain);
  }
}

void GrammarConstraint::walkRegex(int32_t node, size_t depth,
                                  const Matcher::RegexCursor &at,
                                  RegexReach &reach) {
  if (path.size() <= depth)
    path.resize(depth + 1);
  for (const auto &[byte, child] : vocab->node(node).children) {
    path[depth] = char(byte);
    Matcher::RegexCursor next = at;
    if (at.inString && at.owed == 0 &&
        (byte == '"' || byte == '\\' || byte < 0x20)) {
      // Where the string may end or escape: the whole matcher decides.
      reach.exits.push_back({child, path.substr(0, depth + 1)});
      continue;
    }
    // As Matcher::stepPatternString: a character is counted at its first
    // byte, and the match must be able to end in the room left.
    if (at.inString && at.owed == 0) {
      if (at.maxLength >= 0 && at.chars >= at.maxLength)
        continue;
      ++next.chars;
    }
    auto [minMore, maxMore] =
        charactersLeft(next.minLength, next.maxLength, next.chars);
    if (!regexTakeByte(*next.rx, next.state, next.cp, next.owed, byte, minMore,
                       maxMore))
      continue;
    const std::vector<int32_t> &ending = vocab->node(child).tokens;
    reach.tokens.insert(reach.tokens.end(), ending.begin(), ending.end());
    walkRegex(child, depth + 1, next, reach);
  }
}

void GrammarConstraint::applyReach(const RegexReach &reach, uint8_t *mask,
                                   int64_t n) {
  for (int32_t t : reach.tokens)
    if (t < n)
      mask[t] = 1;
  for (const auto &[child, bytes] : reach.exits) {
    size_t depth = bytes.size();
    if (scratch.size() <= depth)
      scratch.resize(depth + 1, matcher);
    Matcher &m = scratch[depth];
    m = matcher;
    if (!m.feed(bytes))
      continue;
    for (int32_t t : vocab->node(child).tokens)
      if (t < n)
        mask[t] = 1;
    walk(child, depth, mask, n, false);
  }
}

bool GrammarConstraint::feed(const std::string &bytes) {
  if (!broken && !bytes.empty() && !matcher.feed(bytes))
    broken = true;
  return !broken;
}

void GrammarConstraint::mask(uint8_t *mask, int64_t vocabSize, bool eosToo) {
  if (!broken) {
    if (scratch.empty())
      scratch.push_back(matcher);
    scratch[0] = matcher;
    // Inside a string the plain tokens that fit are allowed as they are;
    // only the others (quotes, escapes, ...) need the matcher.
    int64_t room = matcher.plainStringRoom();
    const std::vector<int32_t> &plain = vocab->plainTokens();
    const std::vector<int32_t> &chars = vocab->plainCharacters();
    if (room >= 0)
      for (size_t i = 0; i < plain.size(); ++i)
        if (plain[i] < vocabSize && chars[i] <= room)
          mask[plain[i]] = 1;
    Matcher::RegexCursor cursor;
    if (room < 0 && matcher.regexCursor(cursor)) {
      // Without lengths, what a regex state reaches is the same each time,
      // for this request and the next ones over the vocabulary.
      bool keep =
          cursor.owed == 0 && cursor.minLength == 0 && cursor.maxLength < 0;
      std::shared_ptr<const RegexReach> reach =
          keep ? vocab->reaches().find(cursor.rx->key(), cursor.inString,
                                       cursor.state)
               : nullptr;
      if (!reach) {
        auto fresh = std::make_shared<RegexReach>();
        walkRegex(0, 0, cursor, *fresh);
        if (keep)
          vocab->reaches().insert(cursor.rx->key(), cursor.inString,
                                  cursor.state, fresh);
        reach = std::move(fresh);
      }
      applyReach(*reach, mask, vocabSize);
    } else {
      walk(0, 0, mask, vocabSize, room >= 0);
    }
  }
  if ((broken || (eosToo && matcher.accepting())) && eos >= 0 &&
      eos < vocabSize)
    mask[eos] = 1;
}

void GrammarConstraint::allowed(const int32_t *output, int64_t n, uint8_t *m,
                                int64_t vocabSize) {
  for (; consumed < n; ++consumed) {
    if (output[consumed] == eos)
      continue;
    const std::string &b = vocab->bytes(output[consumed]);
    if (b.empty()) // a token that is no text cannot be part of the value
      broken = true;
    feed(b);
  }
  mask(m, vocabSize, true);
}

ToolCallConstraint::ToolCallConstraint(
    ToolCallFormat format,
    std::vector<std::pair<std::string, std::shared_ptr<const Grammar>>> bodies,
    std::shared_ptr<const VocabTrie> vocab, int64_t eosToken)
    : format(format), bodies(std::move(bodies)), vocab(std::move(vocab)),
      eos(eosToken), parser(format) {}

void ToolCallConstraint::allowed(const int32_t *output, int64_t n,
                                 uint8_t *mask, int64_t vocabSize) {
  for (; consumed < n; ++consumed) {
    if (output[consumed] == eos)
      continue;
    const std::string &b = vocab->bytes(output[consumed]);
    text += b;
    if (body) {
      body->feed(b);
      if (body->accepting()) // the call is closed: free again
        body.reset();
    }
    std::string content;
    std::vector<ToolCallDelta> deltas;
    int opened = parser.callsOpened();
    parser.push(b, content, deltas);
    if (body || parser.callsOpened() == opened)
      continue;
    // A call was opened by this token: its body follows the function's
    // parameters, from the byte after the name on (a token may hold both).
    const ToolCallDelta *open = nullptr;
    for (const ToolCallDelta &d : deltas)
      if (d.opens)
        open = &d;
    for (const auto &[name, grammar] : bodies) {
      if (!open || name != open->name)
        continue;
      // The name's end: V3's newline (its fence is the body's), V3.1's
      // separator.
      std::string nameEnd = format == ToolCallFormat::DeepSeekV3
                                ? name + "\n"
                                : callArgumentsOpening(format, name);
      size_t at = text.rfind(nameEnd);
      if (at == std::string::npos)
        break;
      body = std::make_unique<GrammarConstraint>(grammar, vocab, eos);
      if (!body->feed(text.substr(at + nameEnd.size())))
        body.reset(); // the model went its own way: leave it free
      break;
    }
  }
  if (!body) {
    std::fill(mask, mask + vocabSize, uint8_t(1));
    return;
  }
  body->mask(mask, vocabSize, /*eosToo=*/false);
}

} // namespace dsserve
