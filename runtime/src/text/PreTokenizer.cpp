//===- PreTokenizer.cpp - regex splits before BPE -------------------------===//
#include "text/PreTokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

using namespace dsrt::text;

struct PreTokenizer::Regex {
  pcre2_code *code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

namespace {

std::string pcreMessage(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
    return "error " + std::to_string(code);
  return reinterpret_cast<const char *>(buf);
}

/// Match state is per thread: PCRE2 match data and JIT stacks must not be
/// shared by concurrent matches, and one tokenizer serves many threads.
struct MatchScratch {
  pcre2_match_data *data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context *context = pcre2_match_context_create(nullptr);
  // Long whitespace or letter runs need more than PCRE2's 32 KiB default.
  pcre2_jit_stack *stack = pcre2_jit_stack_create(32 * 1024, 8 << 20, nullptr);
  MatchScratch() {
    if (context && stack)
      pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchScratch &scratch() {
  thread_local MatchScratch s;
  return s;
}

/// Bytes of the code point starting at text[i] (well-formed input).
uint32_t charLength(std::string_view text, uint32_t i) {
  uint8_t b = uint8_t(text[i]);
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
}

} // namespace

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

size_t PreTokenizer::numSplits() const { return regexes.size(); }

bool PreTokenizer::addSplit(const std::string &pattern, bool literal,
                            std::string &error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits no UCP (nothing in a literal depends on it).
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  auto re = std::make_unique<Regex>();
  re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                           pattern.size(), options, &code, &offset, nullptr);
  if (!re->code) {
    error = pcreMessage(code) + " at offset " + std::to_string(offset);
    return false;
  }
  // Without JIT support (some architectures) the interpreter still works.
  re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
  regexes.push_back(std::move(re));
  return true;
}

bool PreTokenizer::split(std::string_view text, Piece whole,
                         std::vector<Piece> &out, std::string &error) const {
  MatchScratch &s = scratch();
  if (!s.data || !s.context) {
    error = "out of memory for the regex matcher";
    return false;
  }
  thread_local std::vector<Piece> current, next;
  current.assign(1, whole);
  for (const auto &re : regexes) {
    next.clear();
    for (Piece p : current) {
      // The subject is the piece alone: lookahead must not see past it,
      // exactly as Hugging Face splits each piece separately.
      auto subject = reinterpret_cast<PCRE2_SPTR>(text.data() + p.begin);
      PCRE2_SIZE len = p.end - p.begin, at = 0, prev = 0;
      while (at <= len) {
        int rc = re->jit ? pcre2_jit_match(re->code, subject, len, at, 0,
                                           s.data, s.context)
                         : pcre2_match(re->code, subject, len, at,
                                       PCRE2_NO_UTF_CHECK, s.data, s.context);
        if (rc == PCRE2_ERROR_NOMATCH)
          break;
        if (rc < 0) {
          error = "pre-tokenizer regex failed at byte " +
                  std::to_string(p.begin + at) + ": " + pcreMessage(rc);
          return false;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s.data);
        PCRE2_SIZE mb = ov[0], me = ov[1];
        if (me == mb) { // an empty match splits nothing; step one character
          if (mb >= len)
            break;
          at = mb + charLength(text, uint32_t(p.begin + mb));
          continue;
        }
        if (mb > prev)
          next.push_back({uint32_t(p.begin + prev), uint32_t(p.begin + mb)});
        next.push_back({uint32_t(p.begin + mb), uint32_t(p.begin + me)});
        prev = at = me;
      }
      if (prev < len)
        next.push_back({uint32_t(p.begin + prev), p.end});
    }
    current.swap(next);
  }
  out.insert(out.end(), current.begin(), current.end());
  return true;
}
