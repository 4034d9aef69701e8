//===- JsonGrammar.cpp - JSON Schema as a byte-level matcher --------------===//
//
// A Matcher holds threads, each a stack of frames: one parse of the text so
// far. Alternatives (anyOf, types lists, an enum text that is a prefix of
// another) fork threads; a byte no thread can take is refused.
//
// Frames, and what their fields hold:
//   Value  a value of `node` starts with the next non-space byte
//   Lit    exact texts: a..b the candidates (a range of the sorted texts),
//          c bytes matched; phase 0: node's literals, 1: node's keys for
//          property d (keyTexts[d]), 2: true/false/null
//   Str    a string's inside; phase 0 plain, 1 after '\', 2 + k with k hex
//          digits of a \u escape to come; a: UTF-8 continuation bytes owed,
//          b: characters so far; node: the String node (-1: any string)
//   Rs     a string whose node has a regex: Str's fields, and c the
//          regex's state, d the character's bits so far (UTF-8 or the \u
//          escape's digits)
//   Rx     text through the node's regex (a Pattern's raw text, an integer
//          range's digits): a UTF-8 bytes owed, c the regex's state, d the
//          character's bits so far; a byte it cannot take after a whole
//          match is the parent's
//   Num    a number; phase: the state below, a its length, b 1 if integer
//   Obj    an object with properties; a the next unwritten property, d the
//          property whose value is being read; phase 0 after '{', 1 after
//          a key, 2 after a value, 3 after ','
//   Map    a free-form object, phases as Obj
//   Arr    an array; a its items so far, phases 0 after '[', 2 after a
//          value, 3 after ','
//   Seq    parts in a row; a the part being read, phase 1 once it ended
//          (the next starts with the next byte)
//   Done   the bottom; phase 1 once the root value is complete
//
//===----------------------------------------------------------------------===//

#include "JsonGrammar.h"

#include <algorithm>

using json = nlohmann::ordered_json;

namespace dsserve {
namespace {

bool isSpace(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
bool isDigit(uint8_t c) { return c >= '0' && c <= '9'; }
bool isHex(uint8_t c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hexValue(uint8_t c) { return isDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }
/// The character a JSON escape `\c` stands for (not \u), or -1.
int32_t escaped(uint8_t c) {
  switch (c) {
  case '"':
  case '\\':
  case '/':
    return c;
  case 'b':
    return '\b';
  case 'f':
    return '\f';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  }
  return -1;
}

const std::vector<std::string> &anyLiterals() {
  static const std::vector<std::string> l = {"false", "null", "true"};
  return l;
}

/// Number states (Num frames' phase).
enum NumState : uint8_t {
  kMinus = 1,    // "-"
  kZero = 2,     // "0" (accepting)
  kInt = 3,      // [1-9][0-9]* (accepting)
  kDot = 4,      // "."
  kFrac = 5,     // digits after the dot (accepting)
  kExp = 6,      // "e"
  kExpSign = 7,  // "e-"
  kExpDigit = 8, // (accepting)
};
bool numAccepting(uint8_t s) {
  return s == kZero || s == kInt || s == kFrac || s == kExpDigit;
}
/// The state after `c`, or 0.
uint8_t numNext(uint8_t s, uint8_t c, bool integer) {
  switch (s) {
  case kMinus:
    return c == '0' ? kZero : isDigit(c) ? kInt : 0;
  case kZero:
  case kInt:
    if (s == kInt && isDigit(c))
      return kInt;
    if (integer)
      return 0;
    return c == '.' ? kDot : (c == 'e' || c == 'E') ? kExp : 0;
  case kDot:
  case kFrac:
    if (isDigit(c))
      return kFrac;
    return s == kFrac && !integer && (c == 'e' || c == 'E') ? kExp : 0;
  case kExp:
    return (c == '+' || c == '-') ? kExpSign : isDigit(c) ? kExpDigit : 0;
  case kExpSign:
  case kExpDigit:
    return isDigit(c) ? kExpDigit : 0;
  }
  return 0;
}

using Node = Grammar::Node;

} // namespace

//===----------------------------------------------------------------------===//
// Matcher
//===----------------------------------------------------------------------===//

Matcher::Matcher(std::shared_ptr<const Grammar> g) : grammar(std::move(g)) {
  Thread t;
  t.stack.push_back({Frame::Done});
  pushValue(std::move(t), grammar->root(), threads);
}

void Matcher::pushValue(Thread t, int node, std::vector<Thread> &out,
                        int depth) const {
  if (node >= 0 && grammar->node(node).kind == Node::Kind::Union) {
    if (depth > 16) // a union of itself: nothing new down there
      return;
    for (int alt : grammar->node(node).alternatives)
      pushValue(t, alt, out, depth + 1);
    return;
  }
  Frame f{Frame::Value};
  f.node = node;
  t.stack.push_back(f);
  out.push_back(std::move(t));
}

const std::vector<std::string> &Matcher::texts(const Frame &f) const {
  if (f.phase == 2)
    return anyLiterals();
  const Node &n = grammar->node(f.node);
  return f.phase == 0 ? n.literals : n.keyTexts[size_t(f.d)];
}

void Matcher::valueDone(Thread &t) const {
  Frame done = t.stack.back();
  t.stack.pop_back();
  Frame &parent = t.stack.back();
  switch (parent.kind) {
  case Frame::Done:
    parent.phase = 1;
    break;
  case Frame::Obj:
    if (parent.phase == 0 || parent.phase == 3) { // a key
      int prop =
          grammar->node(parent.node).keyProps[size_t(done.d)][size_t(done.a)];
      parent.d = prop;
      parent.a = prop + 1;
      parent.phase = 1;
    }
    break;
  case Frame::Map:
    if (parent.phase == 0 || parent.phase == 3)
      parent.phase = 1;
    break;
  case Frame::Seq:
    // The last part: the sequence is done too. Else the next part starts
    // with the next byte.
    if (size_t(parent.a) + 1 == grammar->node(parent.node).parts.size())
      valueDone(t);
    else
      parent.phase = 1;
    break;
  default:
    break;
  }
}

void Matcher::startValue(Thread t, int node, uint8_t byte,
                         std::vector<Thread> &out) const {
  Node::Kind kind = node < 0 ? Node::Kind::Any : grammar->node(node).kind;
  Frame f{Frame::Value};
  f.node = node;
  auto open = [&](Frame::Kind k) {
    if (t.stack.size() > size_t(kMaxDepth))
      return;
    f.kind = k;
    t.stack.push_back(f);
    out.push_back(std::move(t));
  };
  auto number = [&](bool integer) {
    uint8_t s = byte == '-' ? kMinus : byte == '0' ? kZero : kInt;
    f.kind = Frame::Num;
    f.phase = s;
    f.a = 1;
    f.b = integer;
    t.stack.push_back(f);
    out.push_back(std::move(t));
  };
  auto literal = [&](uint8_t phase) {
    f.kind = Frame::Lit;
    f.phase = phase;
    f.a = 0;
    f.b = int32_t(texts(f).size());
    f.c = 0;
    t.stack.push_back(f);
    stepLiteral(std::move(t), byte, out);
  };
  bool numeric = byte == '-' || isDigit(byte);
  switch (kind) {
  case Node::Kind::Any:
    if (byte == '{')
      return open(Frame::Map);
    if (byte == '[')
      return open(Frame::Arr);
    if (byte == '"')
      return open(Frame::Str);
    if (numeric)
      return number(false);
    if (byte == 't' || byte == 'f' || byte == 'n')
      return literal(2);
    return;
  case Node::Kind::Object:
    if (byte == '{')
      open(Frame::Obj);
    return;
  case Node::Kind::Map:
    if (byte == '{')
      open(Frame::Map);
    return;
  case Node::Kind::Array:
    if (byte == '[')
      open(Frame::Arr);
    return;
  case Node::Kind::String:
    if (byte == '"') {
      int rx = grammar->node(node).regex;
      if (rx >= 0)
        f.c = grammar->regexOf(rx).start();
      open(rx >= 0 ? Frame::Rs : Frame::Str);
    }
    return;
  case Node::Kind::Pattern:
    break;
  case Node::Kind::Number:
  case Node::Kind::Integer:
    if (grammar->node(node).regex >= 0) // an integer range: its digits'
      break;                            // pattern, as a Pattern's text
    if (numeric)
      number(kind == Node::Kind::Integer);
    return;
  case Node::Kind::Literals:
    return literal(0);
  case Node::Kind::Sequence: {
    f.kind = Frame::Seq;
    f.a = 0;
    t.stack.push_back(f);
    std::vector<Thread> starts;
    pushValue(std::move(t), grammar->node(node).parts[0], starts);
    for (Thread &s : starts)
      step(std::move(s), byte, out);
    return;
  }
  case Node::Kind::Union: // expanded by pushValue
    return;
  }
  // Text through the node's regex: a Pattern's (guided_regex), or an
  // integer range's digits.
  f.kind = Frame::Rx;
  f.c = grammar->regexOf(grammar->node(node).regex).start();
  t.stack.push_back(f);
  step(std::move(t), byte, out);
}

void Matcher::stepLiteral(Thread t, uint8_t byte,
                          std::vector<Thread> &out) const {
  Frame &f = t.stack.back();
  const std::vector<std::string> &l = texts(f);
  size_t pos = size_t(f.c);
  // A complete candidate that others extend (enum 1 and 12): the value may
  // end here, the byte then being its parent's.
  if (f.a < f.b && l[size_t(f.a)].size() == pos) {
    Thread ended = t;
    Frame done = ended.stack.back();
    done.b = done.a + 1;
    ended.stack.back() = done;
    valueDone(ended);
    step(std::move(ended), byte, out);
    ++f.a;
  }
  // The candidates sharing the matched prefix are a range of the sorted
  // texts; those whose next byte is `byte` are a range within it.
  auto lo = std::lower_bound(
      l.begin() + f.a, l.begin() + f.b, byte,
      [&](const std::string &s, uint8_t c) { return uint8_t(s[pos]) < c; });
  auto hi = std::upper_bound(
      lo, l.begin() + f.b, byte,
      [&](uint8_t c, const std::string &s) { return c < uint8_t(s[pos]); });
  if (lo == hi)
    return;
  f.a = int32_t(lo - l.begin());
  f.b = int32_t(hi - l.begin());
  f.c = int32_t(pos + 1);
  // Complete and unambiguous: the value ends now.
  if (f.b - f.a == 1 && l[size_t(f.a)].size() == pos + 1)
    valueDone(t);
  out.push_back(std::move(t));
}

void Matcher::stepNumber(Thread t, uint8_t byte,
                         std::vector<Thread> &out) const {
  Frame &f = t.stack.back();
  uint8_t next = numNext(f.phase, byte, f.b != 0);
  if (next && f.a < kMaxNumber) {
    f.phase = next;
    ++f.a;
    out.push_back(std::move(t));
    return;
  }
  if (!numAccepting(f.phase))
    return;
  // The number ended before this byte: it is the parent's.
  valueDone(t);
  step(std::move(t), byte, out);
}

void Matcher::stepStructure(Thread t, uint8_t byte,
                            std::vector<Thread> &out) const {
  Frame &f = t.stack.back();
  const Node *n = f.node >= 0 ? &grammar->node(f.node) : nullptr;
  auto close = [&] {
    valueDone(t);
    out.push_back(std::move(t));
  };
  auto value = [&](int node) {
    std::vector<Thread> starts;
    pushValue(std::move(t), node, starts);
    for (Thread &s : starts) {
      int v = s.stack.back().node;
      s.stack.pop_back();
      startValue(std::move(s), v, byte, out);
    }
  };
  switch (f.kind) {
  case Frame::Obj: {
    size_t count = n->values.size();
    auto requiredLeft = [&] {
      for (size_t i = size_t(f.a); i < count; ++i)
        if (n->required[i])
          return true;
      return false;
    };
    if ((f.phase == 0 || f.phase == 3) && byte == '"' && size_t(f.a) < count) {
      Frame key{Frame::Lit};
      key.phase = 1;
      key.node = f.node;
      key.d = f.a;
      key.b = int32_t(n->keyTexts[size_t(f.a)].size());
      t.stack.push_back(key);
      stepLiteral(std::move(t), byte, out);
    } else if (f.phase == 1 && byte == ':') {
      f.phase = 2;
      int v = n->values[size_t(f.d)]; // read before t moves
      pushValue(std::move(t), v, out);
    } else if (f.phase == 2 && byte == ',' && size_t(f.a) < count) {
      f.phase = 3;
      out.push_back(std::move(t));
    } else if ((f.phase == 0 || f.phase == 2) && byte == '}' &&
               !requiredLeft()) {
      close();
    }
    return;
  }
  case Frame::Map:
    if ((f.phase == 0 || f.phase == 3) && byte == '"') {
      Frame key{Frame::Str};
      t.stack.push_back(key);
      out.push_back(std::move(t));
    } else if (f.phase == 1 && byte == ':') {
      f.phase = 2;
      pushValue(std::move(t), n ? n->extra : -1, out);
    } else if (f.phase == 2 && byte == ',') {
      f.phase = 3;
      out.push_back(std::move(t));
    } else if ((f.phase == 0 || f.phase == 2) && byte == '}') {
      close();
    }
    return;
  case Frame::Arr: {
    int64_t minItems = n ? n->minItems : 0, maxItems = n ? n->maxItems : -1;
    if ((f.phase == 0 || f.phase == 2) && byte == ']' && f.a >= minItems) {
      close();
    } else if (f.phase == 2 && byte == ',' &&
               (maxItems < 0 || f.a < maxItems)) {
      f.phase = 3;
      out.push_back(std::move(t));
    } else if ((f.phase == 3 || (f.phase == 0 && maxItems != 0))) {
      f.phase = 2;
      ++f.a;
      value(n ? n->items : -1);
    }
    return;
  }
  default:
    return;
  }
}

void Matcher::step(Thread t, uint8_t byte, std::vector<Thread> &out) const {
  Frame &f = t.stack.back();
  bool space = isSpace(byte);
  switch (f.kind) {
  case Frame::Lit:
    return stepLiteral(std::move(t), byte, out);
  case Frame::Num:
    return stepNumber(std::move(t), byte, out);
  case Frame::Rx: {
    const Regex &rx = grammar->regexOf(grammar->node(f.node).regex);
    Frame before = f;
    if (regexTakeByte(rx, f.c, f.d, f.a, byte)) {
      out.push_back(std::move(t));
      return;
    }
    // A whole match ends before this byte: it is the parent's (an
    // integer's comma or brace; after a root Pattern, nothing).
    f = before;
    if (f.a != 0 || !rx.accepting(f.c))
      return;
    valueDone(t);
    step(std::move(t), byte, out);
    return;
  }
  case Frame::Rs:
    return stepPatternString(std::move(t), byte, out);
  case Frame::Str:
    if (f.phase == 0) {
      const Node *n = f.node >= 0 ? &grammar->node(f.node) : nullptr;
      // Valid UTF-8: `a` continuation bytes are still owed.
      if (f.a > 0) {
        if ((byte & 0xC0) != 0x80)
          return;
        --f.a;
        out.push_back(std::move(t));
        return;
      }
      if (byte == '"') {
        if (n && f.b < n->minLength)
          return;
        valueDone(t);
        out.push_back(std::move(t));
        return;
      }
      if (byte < 0x20 || (byte >= 0x80 && byte < 0xC2) || byte > 0xF4)
        return;
      // A character starts (an escape is one): `b` counts them.
      if (n && n->maxLength >= 0 && f.b >= n->maxLength)
        return;
      ++f.b;
      if (byte == '\\')
        f.phase = 1;
      else if (byte >= 0x80)
        f.a = byte < 0xE0 ? 1 : byte < 0xF0 ? 2 : 3;
    } else if (f.phase == 1) {
      if (byte == 'u')
        f.phase = 2 + 4;
      else if (std::string("\"\\/bfnrt").find(char(byte)) != std::string::npos)
        f.phase = 0;
      else
        return;
    } else {
      if (!isHex(byte))
        return;
      f.phase = f.phase == 3 ? 0 : f.phase - 1;
    }
    out.push_back(std::move(t));
    return;
  case Frame::Done: // after the root: nothing, not even whitespace
    return;
  case Frame::Seq: { // a part ended: the next one starts with this byte
    f.phase = 0;
    ++f.a;
    int part = grammar->node(f.node).parts[size_t(f.a)];
    std::vector<Thread> starts;
    pushValue(std::move(t), part, starts);
    for (Thread &s : starts)
      step(std::move(s), byte, out);
    return;
  }
  default:
    break;
  }
  // Between tokens: whitespace, a bounded run of it; none around raw text,
  // nor before the answer's value (its first token starts it). Before raw
  // text a whitespace byte is the text's own.
  bool rawNext =
      f.kind == Frame::Value && f.node >= 0 && grammar->node(f.node).raw;
  if (space && !rawNext) {
    bool root = f.kind == Frame::Value && t.stack.size() == 2;
    if (t.ws >= kMaxWhitespace || grammar->raw || root)
      return;
    ++t.ws;
    out.push_back(std::move(t));
    return;
  }
  t.ws = 0;
  if (f.kind == Frame::Value) {
    int node = f.node;
    t.stack.pop_back();
    return startValue(std::move(t), node, byte, out);
  }
  stepStructure(std::move(t), byte, out);
}

void Matcher::stepPatternString(Thread t, uint8_t byte,
                                std::vector<Thread> &out) const {
  Frame &f = t.stack.back();
  const Node &n = grammar->node(f.node);
  const Regex &rx = grammar->regexOf(n.regex);
  if (f.phase == 0 && f.a == 0) { // a character starts (an escape is one)
    if (byte == '"') {
      if (f.b < n.minLength || !rx.accepting(f.c))
        return;
      valueDone(t);
      out.push_back(std::move(t));
      return;
    }
    if (byte < 0x20 || (n.maxLength >= 0 && f.b >= n.maxLength))
      return;
    ++f.b;
  }
  // Characters after this one: a match must be able to end in that room.
  const std::pair<int64_t, int64_t> room =
      charactersLeft(n.minLength, n.maxLength, f.b);
  const int64_t minMore = room.first, maxMore = room.second;
  auto character = [&](uint32_t cp) {
    f.c = rx.step(f.c, cp);
    return f.c != Regex::kDead && rx.canEnd(f.c, minMore, maxMore);
  };
  // An escape can still write any character of the Basic Multilingual
  // Plane (as \u); none of them may fit, and then it must not start.
  auto bmp = [&] {
    return rx.anyIn(f.c, 0, 0xD7FF, minMore, maxMore) ||
           rx.anyIn(f.c, 0xE000, 0xFFFF, minMore, maxMore);
  };
  if (f.phase == 0) {
    if (byte == '\\' && f.a == 0) {
      if (!bmp())
        return;
      f.phase = 1;
    } else if (!regexTakeByte(rx, f.c, f.d, f.a, byte, minMore, maxMore)) {
      return;
    }
  } else if (f.phase == 1) {
    if (byte == 'u') {
      if (!bmp())
        return;
      f.phase = 2 + 4;
      f.d = 0;
    } else if (int32_t cp = escaped(byte); cp < 0 || !character(uint32_t(cp))) {
      return;
    } else {
      f.phase = 0;
    }
  } else {
    if (!isHex(byte))
      return;
    f.d = f.d * 16 + hexValue(byte);
    int left = f.phase - 3; // digits after this one
    uint32_t lo = uint32_t(f.d) << (4 * left);
    uint32_t hi = lo | ((1u << (4 * left)) - 1);
    if (lo >= 0xD800 && hi <= 0xDFFF) // surrogates: no character alone
      return;
    if (left == 0 ? !character(lo) : !rx.anyIn(f.c, lo, hi, minMore, maxMore))
      return;
    f.phase = left == 0 ? 0 : f.phase - 1;
  }
  out.push_back(std::move(t));
}

bool Matcher::advance(uint8_t byte) {
  spare.clear();
  for (Thread &t : threads)
    step(std::move(t), byte, spare);
  threads.swap(spare);
  // Parses that met again go on as one.
  for (size_t i = 1; i < threads.size(); ++i)
    if (std::find(threads.begin(), threads.begin() + long(i), threads[i]) !=
        threads.begin() + long(i))
      threads.erase(threads.begin() + long(i--));
  return !threads.empty();
}

bool Matcher::feed(uint8_t byte) {
  std::vector<Thread> saved = threads;
  if (advance(byte))
    return true;
  threads = std::move(saved);
  return false;
}

bool Matcher::feed(const std::string &bytes) {
  std::vector<Thread> saved = threads;
  for (char c : bytes)
    if (!advance(uint8_t(c))) {
      threads = std::move(saved);
      return false;
    }
  return true;
}

bool Matcher::finishable(const Thread &t) const {
  if (t.stack.size() == 1)
    return t.stack[0].phase == 1;
  if (t.stack.size() != 2)
    return false;
  // A root number or literal that could still go on may also end here.
  const Frame &f = t.stack[1];
  if (f.kind == Frame::Num)
    return numAccepting(f.phase);
  if (f.kind == Frame::Lit)
    return f.a < f.b && texts(f)[size_t(f.a)].size() == size_t(f.c);
  if (f.kind == Frame::Rx)
    return f.a == 0 &&
           grammar->regexOf(grammar->node(f.node).regex).accepting(f.c);
  // A pattern that matches the empty answer, before any byte.
  if (f.kind == Frame::Value && f.node >= 0 &&
      grammar->node(f.node).kind == Node::Kind::Pattern) {
    const Regex &rx = grammar->regexOf(grammar->node(f.node).regex);
    return rx.accepting(rx.start());
  }
  return false;
}

int64_t Matcher::plainStringRoom() const {
  int64_t room = -1;
  for (const Thread &t : threads) {
    const Frame &f = t.stack.back();
    if (f.kind != Frame::Str || f.phase != 0 || f.a != 0)
      return -1;
    // A token fits if any parse has room for its characters.
    int64_t max = f.node >= 0 ? grammar->node(f.node).maxLength : -1;
    room = std::max(room, max < 0 ? INT64_MAX : max - f.b);
  }
  return room;
}

bool Matcher::regexCursor(RegexCursor &c) const {
  if (threads.size() != 1)
    return false;
  const Frame &f = threads[0].stack.back();
  if (f.node < 0 || grammar->node(f.node).regex < 0)
    return false;
  const Node &n = grammar->node(f.node);
  c = RegexCursor{};
  c.rx = &grammar->regexOf(n.regex);
  // An integer range's text is ended by its parent's bytes, which only the
  // matcher knows: no cursor there.
  if (f.kind == Frame::Rx && n.kind != Node::Kind::Pattern)
    return false;
  if (f.kind == Frame::Value && n.kind == Node::Kind::Pattern) {
    c.state = c.rx->start(); // before the answer's first byte
    return true;
  }
  if (!(f.kind == Frame::Rx || (f.kind == Frame::Rs && f.phase == 0)))
    return false;
  c.state = f.c;
  c.cp = f.d;
  c.owed = f.a;
  if (f.kind == Frame::Rs) {
    c.inString = true;
    c.chars = f.b;
    c.minLength = n.minLength;
    c.maxLength = n.maxLength;
  }
  return true;
}

bool Matcher::accepting() const {
  return std::any_of(threads.begin(), threads.end(),
                     [&](const Thread &t) { return finishable(t); });
}

} // namespace dsserve
