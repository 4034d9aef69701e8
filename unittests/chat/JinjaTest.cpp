// The Jinja constructs chat templates use, one test each, with the output
// Python's Jinja2 gives under transformers' settings (trim_blocks and
// lstrip_blocks on), and the errors for what is malformed or unsupported.
#include "text/ChatTemplate.h"

#include <gtest/gtest.h>

using dsrt::text::ChatTemplate;

namespace {

std::string render(const std::string &tpl, const std::string &messages = "[]",
                   bool addGenerationPrompt = false,
                   const std::string &extra = "") {
  std::string error, out;
  auto t = ChatTemplate::parse(tpl, error);
  if (!t)
    return "PARSE ERROR: " + error;
  if (!t->render(messages, addGenerationPrompt, extra, out, error))
    return "RENDER ERROR: " + error;
  return out;
}

} // namespace

TEST(Jinja, TextAndOutput) {
  EXPECT_EQ(render("hello"), "hello");
  EXPECT_EQ(render("{{ 'a' }}{{ \"b\" }}"), "ab");
  EXPECT_EQ(render(""), "");
  // One trailing newline is dropped (keep_trailing_newline off).
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
}

TEST(Jinja, Literals) {
  EXPECT_EQ(render("{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 1e20 }} {{ 2.0 }}"),
            "42 -7 1.5 1e+20 2.0");
  EXPECT_EQ(render("{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}"),
            "True False None True None");
  EXPECT_EQ(render("{{ [1, 'a', none, [true]] }}"),
            "[1, 'a', None, [True]]");
  EXPECT_EQ(render("{{ {'a': 1, 'b': \"it's\"} }}"),
            "{'a': 1, 'b': \"it's\"}");
  EXPECT_EQ(render("{{ 'a\\nb\\t\\u00e9\\x41' }}"), "a\nb\t\xC3\xA9" "A");
  EXPECT_EQ(render("{{ 'ab' 'cd' }}"), "abcd");
}

TEST(Jinja, ArithmeticAndConcatenation) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 10 }}"),
            "7 9 1024");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}"),
            "3 -4 1 2");
  EXPECT_EQ(render("{{ 7 / 2 }} {{ 4 / 2 }} {{ 0.1 + 0.2 }}"),
            "3.5 2.0 0.30000000000000004");
  EXPECT_EQ(render("{{ 'a' + 'b' }}{{ 'x' * 3 }}{{ [1] + [2] }}"),
            "abxxx[1, 2]");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true }}"), "a1NoneTrue");
  EXPECT_EQ(render("{{ 'v' ~ missing ~ '!' }}"), "v!");
  EXPECT_EQ(render("{{ true + 1 }}"), "2");
}

TEST(Jinja, LogicAndComparisons) {
  EXPECT_EQ(render("{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }}"),
            "True False True True");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }}"), "True False");
  EXPECT_EQ(render("{{ 1 != 2 }} {{ [1, 2] == [1, 2] }} {{ none == none }}"),
            "True True True");
  EXPECT_EQ(render("{{ true and 'x' }}|{{ 0 or 'y' }}|{{ not 0 }}"),
            "x|y|True");
  EXPECT_EQ(render("{{ 'x' if false }}|{{ 'a' if 1 > 2 else 'b' }}"), "|b");
  EXPECT_EQ(render("{{ not none is none }}"), "False");
}

TEST(Jinja, InAndNotIn) {
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }}"),
            "True True True");
  EXPECT_EQ(render("{{ 'z' not in 'cat' }} {{ 3 not in [1, 2] }}"),
            "True True");
  EXPECT_EQ(render("{{ 'tool_calls' in messages[0] }}",
                   R"([{"role":"user","content":"x"}])"),
            "False");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(render("{{ none is none }} {{ 1 is not none }} {{ x is defined }} "
                   "{{ x is undefined }}"),
            "True True False True");
  EXPECT_EQ(render("{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} "
                   "{{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }}"),
            "True False True True True True");
  EXPECT_EQ(render("{{ {} is mapping }} {{ [] is iterable }} {{ 3 is odd }} "
                   "{{ 4 is even }} {{ 9 is divisibleby(3) }}"),
            "True True True True True");
  EXPECT_EQ(render("{{ 1 is eq 1 }} {{ 'ab' is lower }} {{ 2 is in [1, 2] }} "
                   "{{ true is true }} {{ false is false }}"),
            "True True True True True");
}

TEST(Jinja, IfElifElse) {
  const char *tpl = "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 "
                    "%}two{% else %}many{% endif %},{% endfor %}";
  EXPECT_EQ(render(tpl), "one,two,many,");
  EXPECT_EQ(render("{% if [] %}a{% else %}b{% endif %}"), "b");
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ "
                   "loop.index0 }}{{ loop.first }}{{ loop.last }}{{ "
                   "loop.length }}{{ loop.revindex }} {% endfor %}"),
            "10TrueFalse33 21FalseFalse32 32FalseTrue31 ");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v "
                   "}};{% endfor %}"),
            "a=1;b=2;");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in range(6) if x is even %}{{ x }}{% endfor %}"),
            "024");
  EXPECT_EQ(render("{% for c in 'hé' %}[{{ c }}]{% endfor %}"), "[h][é]");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}"
                   "{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}"
                   "{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in undefined_list %}x{% endfor %}ok"), "ok");
}

TEST(Jinja, SetScopingAndNamespace) {
  // A plain `set` inside a loop is local to the iteration (Jinja2 scoping);
  // namespace attributes carry over.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}"
                   "{{ x }}{% endfor %}{{ x }}"),
            "1110");
  EXPECT_EQ(render("{% set ns = namespace(n=0, s='') %}{% for i in range(3) "
                   "%}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% "
                   "endfor %}{{ ns.n }} {{ ns.s }}"),
            "3 012");
  EXPECT_EQ(render("{% if true %}{% set y = 'in if' %}{% endif %}{{ y }}"),
            "in if");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set block %}x{{ 1 + 1 }}{% endset %}[{{ block }}]"),
            "[x2]");
  EXPECT_EQ(render("{% if not add_generation_prompt is defined %}{% set "
                   "add_generation_prompt = false %}{% endif %}{{ "
                   "add_generation_prompt }}",
                   "[]", true),
            "True");
}

TEST(Jinja, IndexingAndSlicing) {
  EXPECT_EQ(render("{{ [1, 2, 3][0] }}{{ [1, 2, 3][-1] }}{{ 'abc'[-2] }}"),
            "13b");
  EXPECT_EQ(render("{{ [1, 2, 3, 4][1:3] }}{{ [1, 2, 3][::-1] }}{{ "
                   "'hello'[1:] }}{{ 'hello'[:-1] }}{{ 'héllo'[1:3] }}"),
            "[2, 3][3, 2, 1]ellohellél");
  EXPECT_EQ(render("{{ [1, 2][5] is undefined }}{{ [1, 2, 3][-10:2] }}"),
            "True[1, 2]");
  EXPECT_EQ(render("{{ d.a }}{{ d['b'] }}{{ d.missing is undefined }}{{ "
                   "d.c.0 }}",
                   "[]", false, R"({"d":{"a":1,"b":2,"c":[7]}})"),
            "12True7");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("{{ 'a b  c'.split() }}{{ 'a,b,,c'.split(',') }}{{ "
                   "'a,b,c'.split(',', 1) }}"),
            "['a', 'b', 'c']['a', 'b', '', 'c']['a', 'b,c']");
  EXPECT_EQ(render("{{ 'x</think>y</think>z'.split('</think>')[-1] }}"), "z");
  EXPECT_EQ(render("{{ ' a b c '.split(none, 1) }}{{ ' a b c '.rsplit(none, "
                   "1) }}"),
            "['a', 'b c '][' a b', 'c']");
  EXPECT_EQ(render("[{{ '  hi \\n'.strip() }}][{{ '  hi'.lstrip() }}][{{ "
                   "'hi  '.rstrip() }}][{{ 'xxhixx'.strip('x') }}]"),
            "[hi][hi][hi][hi]");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ "
                   "'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('x') }}"),
            "TrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 'a-b-c'.replace('-', '+') }}{{ 'aaa'.replace('a', "
                   "'b', 2) }}"),
            "a+b+cbba");
  EXPECT_EQ(render("{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}{{ 'a b'.title() }}"
                   "{{ 'abc'.find('c') }}{{ ', '.join(['x', 'y']) }}"),
            "ABabA B2x, y");
  // Python strips Unicode whitespace (U+3000 here).
  EXPECT_EQ(render("[{{ '\\u3000x '.strip() }}]"), "[x]");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(render("{{ 'héllo' | length }}{{ [1, 2] | length }}{{ {'a': 1} | "
                   "count }}{{ x | length }}"),
            "5210");
  EXPECT_EQ(render("[{{ '  a  ' | trim }}]"), "[a]");
  EXPECT_EQ(render("{{ {'a': [1, none, true, 'é\"'], 'b': 1.5} | tojson }}"),
            "{\"a\": [1, null, true, \"é\\\"\"], \"b\": 1.5}");
  EXPECT_EQ(render("{{ {'a': [1, 2], 'b': {}} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(render("{{ x | default('d') }}{{ '' | default('e', true) }}{{ 1 "
                   "| string }}{{ '3' | int + 1 }}"),
            "de14");
  EXPECT_EQ(render("{{ [1, 2, 3] | join('-') }}{{ [1, 2] | first }}{{ [1, 2] "
                   "| last }}{{ [1, 2] | reverse | list }}"),
            "1-2-312[2, 1]");
  EXPECT_EQ(render("{{ msgs | selectattr('role', 'equalto', 'user') | "
                   "map(attribute='c') | join(',') }}",
                   "[]", false,
                   R"({"msgs":[{"role":"user","c":"a"},{"role":"x","c":"b"},)"
                   R"({"role":"user","c":"c"}]})"),
            "a,c");
  EXPECT_EQ(render("{{ 'AbC' | lower }}{{ 'abc' | upper }}{{ -3 | abs }}{{ "
                   "'a<b' | e }}"),
            "abcABC3a&lt;b");
}

TEST(Jinja, OrderingFilters) {
  EXPECT_EQ(render("{{ ['b', 'A', 'c'] | sort }}{{ [3, 1, 2] | sort(reverse="
                   "true) }}{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') | "
                   "map(attribute='n') | list }}"),
            "['A', 'b', 'c'][3, 2, 1][1, 2]");
  EXPECT_EQ(render("{{ ['a', 'A', 'b'] | unique | list }}{{ [3, 1] | min }}{{ "
                   "[3, 1] | max }}{{ [1, 2.5] | sum }}{{ [] | max is "
                   "undefined }}"),
            "['a', 'b']133.5True");
  EXPECT_EQ(render("{{ [1, 'a'] | sort }}"),
            "RENDER ERROR: line 1: cannot order str and int");
}

TEST(Jinja, WhitespaceControl) {
  // trim_blocks drops the newline after a block tag, lstrip_blocks the
  // indentation before one; `-` strips all whitespace on its side.
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"),
            "a\n  b\nc");
  EXPECT_EQ(render("a   {{- 'b' -}}   c"), "abc");
  EXPECT_EQ(render("a\n\n{%- if true -%}\n\n b {%- endif %}"), "ab");
  EXPECT_EQ(render("x {# comment #}\ny"), "x y");
  EXPECT_EQ(render("  {% if true %}a{% endif %}"), "a");
  EXPECT_EQ(render("  {%+ if true %}a{% endif %}"), "  a");
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}"), "a\nb");
}

TEST(Jinja, RaiseException) {
  std::string out = render("line one\n{% if messages | length == 0 %}{{ "
                           "raise_exception('Conversation roles must "
                           "alternate') }}{% endif %}");
  EXPECT_EQ(out, "RENDER ERROR: line 2: raise_exception: Conversation roles "
                 "must alternate");
}

TEST(JinjaErrors, UnsupportedConstructsNameThemselvesAndTheirLine) {
  EXPECT_EQ(render("a\n{% macro m() %}{% endmacro %}"),
            "PARSE ERROR: line 2: unsupported tag 'macro'");
  EXPECT_EQ(render("\n\n{{ x | frobnicate }}"),
            "PARSE ERROR: line 3: unsupported filter 'frobnicate'");
  EXPECT_EQ(render("{% if x is frob %}{% endif %}"),
            "PARSE ERROR: line 1: unsupported test 'frob'");
  EXPECT_EQ(render("\n{{ strftime_now('%Y') }}"),
            "RENDER ERROR: line 2: unsupported function 'strftime_now' "
            "(undefined)");
  EXPECT_EQ(render("{{ 'a'.zfill(3) }}"),
            "RENDER ERROR: line 1: unsupported method 'zfill' of a str value");
  EXPECT_EQ(render("{% for x in y recursive %}{% endfor %}"),
            "PARSE ERROR: line 1: unsupported construct 'recursive' loop");
  EXPECT_EQ(render("{{ '%s' % 1 }}"),
            "RENDER ERROR: line 1: unsupported construct: '%' string "
            "formatting");
}

TEST(JinjaErrors, SyntaxErrors) {
  EXPECT_EQ(render("{% if x %}"), "PARSE ERROR: line 1: 'if' is never closed");
  EXPECT_EQ(render("\n{% endfor %}"),
            "PARSE ERROR: line 2: 'endfor' without a matching opening tag");
  EXPECT_EQ(render("{{ 'abc }}"),
            "PARSE ERROR: line 1: unterminated string literal");
  EXPECT_EQ(render("{{ 1 + }}"),
            "PARSE ERROR: line 1: expected an expression, got '}}'");
  EXPECT_EQ(render("{{ x"),
            "PARSE ERROR: line 1: unterminated tag, expected '}}'");
  EXPECT_EQ(render("{# never closed"),
            "PARSE ERROR: line 1: unterminated comment '{#'");
  EXPECT_EQ(render("{{ a $ b }}"),
            "PARSE ERROR: line 1: unexpected character '$' in tag");
  std::string deep = std::string(1000, '(') + "1" + std::string(1000, ')');
  EXPECT_EQ(render("{{ " + deep + " }}"),
            "PARSE ERROR: line 1: template nested too deeply");
}

TEST(JinjaErrors, RuntimeErrors) {
  EXPECT_EQ(render("{{ 'a' + 1 }}"),
            "RENDER ERROR: line 1: unsupported operand types for +: 'str' and "
            "'int'");
  EXPECT_EQ(render("{{ 'a' + x }}"),
            "RENDER ERROR: line 1: 'x' is undefined (operator '+')");
  EXPECT_EQ(render("\n{{ x.y }}"),
            "RENDER ERROR: line 2: 'x' is undefined (reading '.y')");
  EXPECT_EQ(render("{{ 1 // 0 }}"), "RENDER ERROR: line 1: division by zero");
  EXPECT_EQ(render("{% set s = 'x' %}{% set s.a = 1 %}"),
            "RENDER ERROR: line 1: cannot set attribute 'a' of 's': only "
            "namespace() objects allow it");
  EXPECT_EQ(render("{{ range(1000000) | length }}"),
            "RENDER ERROR: line 1: range() is limited to 100000 items");
  EXPECT_EQ(render("{{ 'x' * 100000000 }}"),
            "RENDER ERROR: line 1: value larger than 64 MiB");
  EXPECT_EQ(render("{% for i in range(100000) %}{% for j in range(100000) %}"
                   "{% endfor %}{% endfor %}"),
            "RENDER ERROR: line 1: template exceeded 5000000 evaluation "
            "steps");
  EXPECT_EQ(render("{{ 9223372036854775807 + 1 }}"),
            "RENDER ERROR: line 1: integer overflow in '+'");
}

TEST(JinjaErrors, DeepOrCyclicValuesNeitherCrashNorLeak) {
  EXPECT_EQ(render("{% set ns = namespace(x=0) %}{% for i in range(2000) %}"
                   "{% set ns.x = [ns.x] %}{% endfor %}"),
            "RENDER ERROR: line 1: value nested more than 512 levels");
  // Loop objects chained through previtem: printing stops, freeing works.
  EXPECT_EQ(render("{% set ns = namespace(p=0) %}{% for i in range(3000) %}"
                   "{% for x in [ns.p, 0] %}{% set ns.p = loop %}{% endfor %}"
                   "{% endfor %}{{ ns.p }}"),
            "RENDER ERROR: line 1: value nested too deeply to print or "
            "compare");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.self = ns %}{% set "
                   "ns.l = [ns, {'n': ns}] %}{{ ns.l | length }}{{ ns.self.l "
                   "| length }}"),
            "22");
}
