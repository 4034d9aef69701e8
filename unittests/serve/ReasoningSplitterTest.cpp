//===- ReasoningSplitterTest.cpp - R1's reasoning apart from content ------===//

#include "ReasoningSplitter.h"

#include <gtest/gtest.h>

using namespace dsserve;

namespace {

struct Split {
  std::string reasoning, content;
};

/// The text in pieces cut at `cuts` (byte offsets, ascending).
Split run(const std::string &text, const std::vector<size_t> &cuts) {
  ReasoningSplitter s;
  Split out;
  size_t at = 0;
  for (size_t c : cuts) {
    s.push(text.substr(at, c - at), out.reasoning, out.content);
    at = c;
  }
  s.push(text.substr(at), out.reasoning, out.content);
  s.finish(out.reasoning);
  return out;
}

TEST(ReasoningSplitter, EveryCutGivesTheSameSplit) {
  const std::string text = "<think>\nWeigh it.\n</think>\n\nParis.";
  for (size_t a = 0; a <= text.size(); ++a)
    for (size_t b = a; b <= text.size(); ++b) {
      Split s = run(text, {a, b});
      EXPECT_EQ(s.reasoning, "\nWeigh it.\n") << a << "," << b;
      EXPECT_EQ(s.content, "\n\nParis.") << a << "," << b;
    }
}

TEST(ReasoningSplitter, OpenedInThePromptOrNeverClosed) {
  // R1's template opens <think> in the prompt: no opening tag here.
  Split a = run("Weigh it.</think>Paris.", {3});
  EXPECT_EQ(a.reasoning, "Weigh it.");
  EXPECT_EQ(a.content, "Paris.");
  // Never closed: all reasoning, a held partial tag included.
  Split b = run("still thinking </th", {5});
  EXPECT_EQ(b.reasoning, "still thinking </th");
  EXPECT_EQ(b.content, "");
  // Only a leading <think> is dropped; a "<thi" that is not one stays.
  Split c = run("<thin ice</think>x", {2});
  EXPECT_EQ(c.reasoning, "<thin ice");
  EXPECT_EQ(c.content, "x");
  Split d = run("a<think>b</think>c</think>d", {});
  EXPECT_EQ(d.reasoning, "a<think>b");
  EXPECT_EQ(d.content, "c</think>d");
}

TEST(ReasoningSplitter, DecidedTextComesOutAtOnce) {
  ReasoningSplitter s;
  std::string r, c;
  s.push("<think>abc</t", r, c);
  EXPECT_EQ(r, "abc"); // "</t" may begin the tag: held
  s.push("hink>", r, c);
  EXPECT_TRUE(s.inContent());
  s.push("de", r, c);
  EXPECT_EQ(r, "abc");
  EXPECT_EQ(c, "de");
}

} // namespace

TEST(ReasoningSplitter, PromptThatClosedTheThinkingLeavesContent) {
  // V3.1's non-thinking mode: its prompt ends with "</think>".
  ReasoningSplitter s(/*thinkingClosed=*/true);
  std::string reasoning, content;
  s.push("Paris. </think> is", reasoning, content);
  s.push(" text here", reasoning, content);
  s.finish(reasoning);
  EXPECT_EQ(reasoning, "");
  EXPECT_EQ(content, "Paris. </think> is text here");
  EXPECT_TRUE(s.inContent());
}
