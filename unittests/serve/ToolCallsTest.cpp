//===- ToolCallsTest.cpp - DeepSeek tool-call parsing
//----------------------===//

#include "ToolCalls.h"

#include <gtest/gtest.h>

#include <random>

using namespace dsserve;

namespace {

const std::string CB = "<｜tool▁calls▁begin｜>", CE = "<｜tool▁calls▁end｜>",
                  B = "<｜tool▁call▁begin｜>", E = "<｜tool▁call▁end｜>",
                  S = "<｜tool▁sep｜>";

struct Call {
  std::string name, arguments;
  bool operator==(const Call &o) const {
    return name == o.name && arguments == o.arguments;
  }
};

struct Result {
  std::string content;
  std::vector<Call> calls;
  int closed = 0;
};

/// Feeds `pieces` and collects what the deltas add up to, checking the
/// delta protocol on the way (a call opens once, in order, before its
/// arguments).
Result run(ToolCallFormat f, const std::vector<std::string> &pieces,
           ToolCallParser::Start start = ToolCallParser::Start::Content,
           const std::string *name = nullptr) {
  ToolCallParser p(f, start, name);
  Result r;
  std::vector<ToolCallDelta> deltas;
  for (const std::string &piece : pieces)
    p.push(piece, r.content, deltas);
  p.finish(r.content, deltas);
  for (const ToolCallDelta &d : deltas) {
    if (d.opens) {
      EXPECT_EQ(d.index, int(r.calls.size()));
      r.calls.push_back({d.name, ""});
    }
    EXPECT_LT(d.index, int(r.calls.size())) << "arguments before the name";
    if (d.index < int(r.calls.size()))
      r.calls[d.index].arguments += d.arguments;
  }
  EXPECT_EQ(p.callsOpened(), int(r.calls.size()));
  r.closed = p.callsClosed();
  return r;
}

Result whole(ToolCallFormat f, const std::string &text) {
  return run(f, {text});
}

/// The text cut at every byte, and at random places: the result must not
/// depend on the cuts.
void expectSplitInvariant(ToolCallFormat f, const std::string &text) {
  Result w = whole(f, text);
  std::vector<std::string> bytes;
  for (char c : text)
    bytes.emplace_back(1, c);
  Result b = run(f, bytes);
  EXPECT_EQ(b.content, w.content) << text;
  EXPECT_EQ(b.calls, w.calls) << text;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::string> pieces;
    size_t at = 0;
    while (at < text.size()) {
      size_t n = 1 + rng() % 12;
      pieces.push_back(text.substr(at, n));
      at += n;
    }
    Result r = run(f, pieces);
    EXPECT_EQ(r.content, w.content) << text;
    EXPECT_EQ(r.calls, w.calls) << text;
  }
}

const auto V3 = ToolCallFormat::DeepSeekV3;
const auto V31 = ToolCallFormat::DeepSeekV31;

std::string v3Call(const std::string &name, const std::string &args) {
  return B + "function" + S + name + "\n```json\n" + args + "\n```" + E;
}

std::string v31Call(const std::string &name, const std::string &args) {
  return B + name + S + args + E;
}

} // namespace

TEST(ToolCalls, FormatNames) {
  EXPECT_EQ(toolCallFormat("deepseek_v3"), V3);
  EXPECT_EQ(toolCallFormat("deepseek_v31"), V31);
  EXPECT_FALSE(toolCallFormat("hermes"));
}

TEST(ToolCalls, PlainTextIsContent) {
  Result r = whole(V3, "Paris is the capital. <not a marker> ```json```");
  EXPECT_EQ(r.content, "Paris is the capital. <not a marker> ```json```");
  EXPECT_TRUE(r.calls.empty());
}

TEST(ToolCalls, V3TwoCallsAfterContent) {
  std::string text = "Let me check." + CB +
                     v3Call("get_weather", "{\"city\": \"Paris\"}") + "\n" +
                     v3Call("get_time", "{\"tz\": \"CET\"}") + CE;
  Result r = whole(V3, text);
  EXPECT_EQ(r.content, "Let me check.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0], (Call{"get_weather", "{\"city\": \"Paris\"}"}));
  EXPECT_EQ(r.calls[1], (Call{"get_time", "{\"tz\": \"CET\"}"}));
  EXPECT_EQ(r.closed, 2);
  expectSplitInvariant(V3, text);
}

TEST(ToolCalls, V31Calls) {
  std::string text = CB + v31Call("search", "{\"q\": \"a `b` c\"}") +
                     v31Call("open", "{\"id\": 3}") + CE;
  Result r = whole(V31, text);
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0], (Call{"search", "{\"q\": \"a `b` c\"}"}));
  EXPECT_EQ(r.calls[1], (Call{"open", "{\"id\": 3}"}));
  expectSplitInvariant(V31, text);
}

TEST(ToolCalls, ArgumentsKeepInnerBackticksAndWhitespace) {
  // Backticks and newlines inside the JSON are arguments; only the
  // trailing fence and whitespace are not.
  std::string args = "{\"code\": \"```py\\nx = 1\\n```\",\n  \"n\": 2}";
  std::string text = CB + v3Call("run", args) + CE;
  Result r = whole(V3, text);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, args);
  expectSplitInvariant(V3, text);
}

TEST(ToolCalls, UnicodeInNamesAndArguments) {
  std::string text = "Voilà 🦊 " + CB +
                     v3Call("météo", "{\"ville\": \"Zürich 🏔\"}") + CE;
  Result r = whole(V3, text);
  EXPECT_EQ(r.content, "Voilà 🦊 ");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0], (Call{"météo", "{\"ville\": \"Zürich 🏔\"}"}));
  expectSplitInvariant(V3, text);
}

TEST(ToolCalls, CutShortCallKeepsItsArgumentsSoFar) {
  // max_tokens ends the answer inside the arguments.
  std::string text = CB + B + "function" + S + "f\n```json\n{\"a\": [1, 2";
  Result r = whole(V3, text);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0], (Call{"f", "{\"a\": [1, 2"}));
  EXPECT_EQ(r.closed, 0);
  expectSplitInvariant(V3, text);
}

TEST(ToolCalls, SectionWithoutACallIsContent) {
  // Nothing generated is lost: a section that never names a call.
  for (std::string text :
       {"a" + CB, "a" + CB + B + "func", "a" + CB + "  just text",
        "a" + CB + CE + " b", "a" + CB + B + "function" + S + "half"}) {
    Result r = whole(V3, text);
    EXPECT_TRUE(r.calls.empty()) << text;
    EXPECT_EQ(r.content, text) << text;
    expectSplitInvariant(V3, text);
  }
  // V3.1: a name line broken before the separator is not a call either.
  std::string text = CB + B + "two\nlines" + S + "{}" + E;
  Result r = whole(V31, text);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content.substr(0, (CB + B + "two\nlines").size()),
            CB + B + "two\nlines");
}

TEST(ToolCalls, MissingCallEndStillEndsTheCall) {
  // The next call's marker or the section's end closes an unclosed call.
  std::string text = CB + B + "function" + S + "a\n```json\n{}\n```" +
                     v3Call("b", "[1]") + B + "function" + S +
                     "c\n```json\n{\"x\": 1}" + CE;
  Result r = whole(V3, text);
  ASSERT_EQ(r.calls.size(), 3u);
  EXPECT_EQ(r.calls[0], (Call{"a", "{}"}));
  EXPECT_EQ(r.calls[1], (Call{"b", "[1]"}));
  EXPECT_EQ(r.calls[2], (Call{"c", "{\"x\": 1}"}));
  EXPECT_EQ(r.closed, 3);
  expectSplitInvariant(V3, text);
}

TEST(ToolCalls, CallWithoutSectionMarker) {
  std::string text = "ok " + v31Call("f", "{}");
  Result r = whole(V31, text);
  EXPECT_EQ(r.content, "ok ");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0], (Call{"f", "{}"}));
}

TEST(ToolCalls, ForcedRequiredStartsAtTheName) {
  for (ToolCallFormat f : {V3, V31}) {
    std::string prefix = forcedCallPrefix(f, nullptr);
    std::string full =
        f == V3 ? v3Call("pick", "{\"k\": 1}") : v31Call("pick", "{\"k\": 1}");
    // The answer is what follows the prefix the prompt ended with.
    ASSERT_EQ((CB + full).compare(0, prefix.size(), prefix), 0);
    std::string answer = (CB + full).substr(prefix.size()) + CE;
    Result r = run(f, {answer}, ToolCallParser::Start::Forced);
    ASSERT_EQ(r.calls.size(), 1u);
    EXPECT_EQ(r.calls[0], (Call{"pick", "{\"k\": 1}"}));
    EXPECT_EQ(r.content, "");
  }
}

TEST(ToolCalls, ForcedNamedStartsInTheArguments) {
  std::string name = "get_weather";
  for (ToolCallFormat f : {V3, V31}) {
    std::string prefix = forcedCallPrefix(f, &name);
    std::string full = f == V3 ? v3Call(name, "{\"city\": \"Oslo\"}")
                               : v31Call(name, "{\"city\": \"Oslo\"}");
    ASSERT_EQ((CB + full).compare(0, prefix.size(), prefix), 0);
    std::string answer = (CB + full).substr(prefix.size());
    Result r = run(f, {answer}, ToolCallParser::Start::Forced, &name);
    ASSERT_EQ(r.calls.size(), 1u);
    EXPECT_EQ(r.calls[0], (Call{name, "{\"city\": \"Oslo\"}"}));
    EXPECT_EQ(r.closed, 1);
    // Even an empty answer names the call.
    Result e = run(f, {}, ToolCallParser::Start::Forced, &name);
    ASSERT_EQ(e.calls.size(), 1u);
    EXPECT_EQ(e.calls[0], (Call{name, ""}));
  }
}
