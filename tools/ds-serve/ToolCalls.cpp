//===- ToolCalls.cpp - DeepSeek tool calls apart from content
//--------------===//

#include "ToolCalls.h"
#include "StopStrings.h"

#include <algorithm>

namespace dsserve {
namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";
const std::string kFence = "```json";

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool startsWith(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string trimmed(const std::string &s) {
  size_t b = 0, e = s.size();
  while (b < e && isSpace(s[b]))
    ++b;
  while (e > b && isSpace(s[e - 1]))
    --e;
  return s.substr(b, e - b);
}

/// Arguments end before whitespace and V3's closing fence.
size_t argumentsTail(const std::string &s, size_t end) {
  size_t keep = 0;
  while (keep < end && (isSpace(s[end - 1 - keep]) || s[end - 1 - keep] == '`'))
    ++keep;
  return keep;
}

/// The first of `markers` in s: its position (npos if none) and index.
size_t findFirst(const std::string &s,
                 std::initializer_list<const std::string *> markers,
                 const std::string *&which) {
  size_t best = std::string::npos;
  which = nullptr;
  for (const std::string *m : markers) {
    size_t p = s.find(*m);
    if (p < best) {
      best = p;
      which = m;
    }
  }
  return best;
}

size_t longestPartial(const std::string &s,
                      std::initializer_list<const std::string *> markers) {
  size_t keep = 0;
  for (const std::string *m : markers)
    keep = std::max(keep, partialMatch(s, *m));
  return keep;
}

} // namespace

std::optional<ToolCallFormat> toolCallFormat(const std::string &name) {
  if (name == "deepseek_v3")
    return ToolCallFormat::DeepSeekV3;
  if (name == "deepseek_v31")
    return ToolCallFormat::DeepSeekV31;
  return std::nullopt;
}

std::string callArgumentsOpening(ToolCallFormat format,
                                 const std::string &name) {
  return format == ToolCallFormat::DeepSeekV3 ? name + "\n" + kFence + "\n"
                                              : name + kSep;
}

void callBodyFrame(ToolCallFormat format, std::string &before,
                   std::string &after) {
  before = format == ToolCallFormat::DeepSeekV3 ? kFence + "\n" : "";
  after = (format == ToolCallFormat::DeepSeekV3 ? "\n```" : "") + kCallEnd;
}

std::string forcedCallPrefix(ToolCallFormat format, const std::string *name) {
  std::string p = kCallsBegin + kCallBegin;
  if (format == ToolCallFormat::DeepSeekV3)
    p += "function" + kSep;
  if (name)
    p += callArgumentsOpening(format, *name);
  return p;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, Start start,
                               const std::string *name)
    : format(format) {
  if (start == Start::Content)
    return;
  if (name) {
    pendingName = *name;
    pendingOpen = true;
    state = State::Arguments;
  } else {
    state = State::Name;
  }
}

void ToolCallParser::openCall(const std::string &name,
                              std::vector<ToolCallDelta> &calls) {
  ToolCallDelta d;
  d.index = opened++;
  d.opens = true;
  d.name = name;
  calls.push_back(std::move(d));
  sectionRaw.clear();
  argsStarted = false;
}

void ToolCallParser::push(const std::string &piece, std::string &content,
                          std::vector<ToolCallDelta> &calls) {
  if (pendingOpen) {
    pendingOpen = false;
    openCall(pendingName, calls);
  }
  held += piece;
  while (step(content, calls)) {
  }
}

bool ToolCallParser::step(std::string &content,
                          std::vector<ToolCallDelta> &calls) {
  const bool v3 = format == ToolCallFormat::DeepSeekV3;
  // What a call's header turns out not to be: content again when no call
  // was named yet (the held text is read as content from the start).
  auto notACall = [&] {
    if (!opened)
      content += sectionRaw;
    sectionRaw.clear();
    state = State::Content;
    return true;
  };
  switch (state) {
  case State::Content: {
    const std::string *m;
    size_t pos = findFirst(held, {&kCallsBegin, &kCallBegin}, m);
    if (pos == std::string::npos) {
      size_t keep = longestPartial(held, {&kCallsBegin, &kCallBegin});
      content += held.substr(0, held.size() - keep);
      held.erase(0, held.size() - keep);
      return false;
    }
    content += held.substr(0, pos);
    held.erase(0, pos + m->size());
    sectionRaw = *m;
    state = m == &kCallsBegin ? State::Between : v3 ? State::Type : State::Name;
    return true;
  }
  case State::Between:
    return stepBetween(content);
  case State::Type: { // V3: "function" before the separator
    size_t sep = held.find(kSep), nl = held.find('\n');
    if (sep != std::string::npos && sep < nl) {
      sectionRaw += held.substr(0, sep + kSep.size());
      held.erase(0, sep + kSep.size());
      state = State::Name;
      return true;
    }
    return nl != std::string::npos ? notACall() : false;
  }
  case State::Name: {
    // V3: the name ends its line; V3.1: at the separator.
    size_t end = v3 ? held.find('\n') : held.find(kSep);
    size_t bad = v3 ? held.find(kCallEnd) : held.find('\n');
    if (end == std::string::npos || bad < end)
      return bad != std::string::npos ? notACall() : false;
    std::string name = trimmed(held.substr(0, end));
    held.erase(0, end + (v3 ? 1 : kSep.size()));
    openCall(name, calls);
    state = v3 ? State::Fence : State::Arguments;
    return true;
  }
  case State::Fence: // V3: "```json" before the arguments
    if (couldBecome(held, kFence))
      return false;
    if (startsWith(held, kFence))
      held.erase(0, kFence.size());
    else if (startsWith(held, "```"))
      held.erase(0, 3);
    state = State::Arguments;
    return true;
  case State::Arguments:
    return stepArguments(calls);
  case State::After:
    content += held;
    held.clear();
    return false;
  }
  return false;
}

bool ToolCallParser::stepBetween(std::string &content) {
  size_t ws = 0;
  while (ws < held.size() && isSpace(held[ws]))
    ++ws;
  sectionRaw += held.substr(0, ws);
  held.erase(0, ws);
  if (held.empty())
    return false;
  if (startsWith(held, kCallBegin)) {
    sectionRaw += kCallBegin;
    held.erase(0, kCallBegin.size());
    state = format == ToolCallFormat::DeepSeekV3 ? State::Type : State::Name;
    return true;
  }
  if (startsWith(held, kCallsEnd)) {
    held.erase(0, kCallsEnd.size());
    if (!opened) // an empty call section: content as written
      content += sectionRaw + kCallsEnd;
    sectionRaw.clear();
    state = State::After;
    return true;
  }
  if (couldBecome(held, kCallBegin) || couldBecome(held, kCallsEnd))
    return false;
  // Not a call: the section was not one (no call yet), or this is text
  // after the calls; either way it is content.
  if (!opened)
    content += sectionRaw;
  sectionRaw.clear();
  state = State::Content;
  return true;
}

bool ToolCallParser::stepArguments(std::vector<ToolCallDelta> &calls) {
  if (!argsStarted) {
    size_t ws = 0;
    while (ws < held.size() && isSpace(held[ws]))
      ++ws;
    held.erase(0, ws);
    if (held.empty())
      return false;
    argsStarted = true;
  }
  auto emit = [&](size_t n) {
    if (!n)
      return;
    if (!calls.empty() && calls.back().index == opened - 1)
      calls.back().arguments += held.substr(0, n);
    else
      calls.push_back({opened - 1, false, "", held.substr(0, n)});
  };
  // A call ends at its end marker; a model that skips it and starts the
  // next call or ends the section ends the call there too.
  const std::string *m;
  size_t pos = findFirst(held, {&kCallEnd, &kCallBegin, &kCallsEnd}, m);
  if (pos == std::string::npos) {
    size_t keep = longestPartial(held, {&kCallEnd, &kCallBegin, &kCallsEnd});
    keep += argumentsTail(held, held.size() - keep);
    emit(held.size() - keep);
    held.erase(0, held.size() - keep);
    return false;
  }
  emit(pos - argumentsTail(held, pos));
  ++closed;
  if (m == &kCallEnd) {
    held.erase(0, pos + kCallEnd.size());
    state = State::Between;
  } else if (m == &kCallsEnd) {
    held.erase(0, pos + kCallsEnd.size());
    state = State::After;
  } else {
    held.erase(0, pos); // the next call's marker, read in Between
    state = State::Between;
  }
  return true;
}

void ToolCallParser::finish(std::string &content,
                            std::vector<ToolCallDelta> &calls) {
  push("", content, calls);
  switch (state) {
  case State::Content:
  case State::After:
    content += held;
    break;
  case State::Between:
  case State::Type:
  case State::Name: {
    // A section or header no call came of: its text is content (after
    // calls, only if it is more than whitespace).
    std::string rest = sectionRaw + held;
    if (!opened || !trimmed(rest).empty())
      content += rest;
    break;
  }
  case State::Fence:
    break;
  case State::Arguments: { // cut short: the arguments so far
    size_t n = held.size() - argumentsTail(held, held.size());
    if (n) {
      if (!calls.empty() && calls.back().index == opened - 1)
        calls.back().arguments += held.substr(0, n);
      else
        calls.push_back({opened - 1, false, "", held.substr(0, n)});
    }
    break;
  }
  }
  held.clear();
  sectionRaw.clear();
}

} // namespace dsserve
