// ChatTemplate over DeepSeek's templates, tokenizer_config.json loading and
// the C API (dsrt_chat.h).
#include "dsrt/dsrt_chat.h"
#include "text/ChatTemplate.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using dsrt::text::ChatTemplate;

namespace {

const std::string kTemplates = std::string(DS_SOURCE_DIR) + "/test/chat/templates/";

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A scratch file that is removed when the test ends.
struct TempFile {
  explicit TempFile(const std::string &content) {
    char name[] = "/tmp/dsrt-chat-XXXXXX";
    int fd = mkstemp(name);
    path = name;
    FILE *f = fdopen(fd, "wb");
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

std::string renderFile(const std::string &file, const std::string &messages,
                       bool addGenerationPrompt) {
  std::string error, out;
  auto t = ChatTemplate::parse(readFile(kTemplates + file), error);
  if (!t)
    return "PARSE ERROR: " + error;
  if (!t->render(messages, addGenerationPrompt,
                 R"({"bos_token":"<BOS>","eos_token":"<EOS>"})", out, error))
    return "RENDER ERROR: " + error;
  return out;
}

const char *kToolConversation = R"([
  {"role": "system", "content": "S"},
  {"role": "user", "content": "weather?"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"type": "function", "function": {"name": "get", "arguments": "{\"c\": 1}"}},
    {"type": "function", "function": {"name": "put", "arguments": "{}"}}]},
  {"role": "tool", "content": "sunny"},
  {"role": "tool", "content": "done"},
  {"role": "assistant", "content": "It is sunny."}
])";

} // namespace

TEST(ChatTemplate, DeepSeekV2ChatTemplate) {
  EXPECT_EQ(renderFile("deepseek-v2-chat.jinja",
                       R"([{"role":"system","content":"Be brief."},
                           {"role":"user","content":"Hi"},
                           {"role":"assistant","content":"Hello"},
                           {"role":"user","content":"Bye"}])",
                       true),
            "<BOS>Be brief.\n\nUser: Hi\n\nAssistant: Hello<EOS>User: "
            "Bye\n\nAssistant:");
}

TEST(ChatTemplate, DeepSeekV25ToolCalls) {
  EXPECT_EQ(renderFile("deepseek-v2.5.jinja", kToolConversation, true),
            "<BOS>S<｜User｜>weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool"
            "▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n{\"c\": "
            "1}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁"
            "sep｜>put\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><"
            "｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>"
            "sunny<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>done<｜tool▁"
            "output▁end｜><｜tool▁outputs▁end｜>It is sunny.<｜end▁of▁sentence"
            "｜><｜Assistant｜>");
}

TEST(ChatTemplate, DeepSeekR1DropsThinkingOfEarlierTurns) {
  EXPECT_EQ(renderFile("deepseek-r1.jinja",
                       R"([{"role":"user","content":"2+2?"},
                           {"role":"assistant","content":"<think>add</think>4"},
                           {"role":"user","content":"3+3?"}])",
                       true),
            "<BOS><｜User｜>2+2?<｜Assistant｜>4<｜end▁of▁sentence｜><｜User｜>"
            "3+3?<｜Assistant｜><think>\n");
  EXPECT_EQ(renderFile("deepseek-r1.jinja",
                       R"([{"role":"user","content":"x"}])", false),
            "<BOS><｜User｜>x");
}

TEST(ChatTemplate, TemplateErrorsNameTheLine) {
  // R1's template concatenates content: a message without it fails there.
  std::string out = renderFile("deepseek-r1.jinja",
                               R"([{"role":"user"}])", false);
  EXPECT_EQ(out, "RENDER ERROR: line 1: 'dict object' has no attribute "
                 "'content' (operator '+')");
}

TEST(ChatTemplate, MalformedMessages) {
  std::string error, out;
  auto t = ChatTemplate::parse("{{ messages | length }}", error);
  ASSERT_TRUE(t) << error;
  EXPECT_FALSE(t->render("[{\"role\": ", false, "", out, error));
  EXPECT_EQ(error.rfind("messages: invalid JSON: parse error at line 1", 0),
            0u)
      << error;
  EXPECT_FALSE(t->render("{\"role\": \"user\"}", false, "", out, error));
  EXPECT_EQ(error, "messages: expected a JSON array, got object");
  EXPECT_FALSE(t->render("[{\"role\": \"user\"}, 3]", false, "", out, error));
  EXPECT_EQ(error, "messages[1]: expected an object, got number");
  EXPECT_FALSE(t->render("[]", false, "[1]", out, error));
  EXPECT_EQ(error, "extra context: expected a JSON object");
  EXPECT_FALSE(t->render("[\"\xff\"]", false, "", out, error));
  EXPECT_EQ(error.rfind("messages: invalid JSON", 0), 0u) << error;
  EXPECT_TRUE(t->render("[{}, {}]", false, "", out, error)) << error;
  EXPECT_EQ(out, "2");
}

TEST(ChatTemplate, ContextAsTransformersPassesIt) {
  std::string error, out;
  auto t = ChatTemplate::parse("{{ tools is defined }} {{ tools is none }} {{ "
                               "documents is none }} {{ add_generation_prompt "
                               "}} {{ messages | length }}",
                               error);
  ASSERT_TRUE(t) << error;
  ASSERT_TRUE(t->render("[{}]", true, "", out, error)) << error;
  EXPECT_EQ(out, "True True True True 1");
  ASSERT_TRUE(t->render("[]", false, R"({"tools": [{"name": "f"}]})", out,
                        error))
      << error;
  EXPECT_EQ(out, "True False True False 0");
}

TEST(ChatTemplate, DeeplyNestedMessagesAreRefused) {
  std::string error, out;
  auto t = ChatTemplate::parse("{{ messages }}", error);
  ASSERT_TRUE(t) << error;
  std::string deep = "[{\"c\": " + std::string(300, '[') +
                     std::string(300, ']') + "}]";
  EXPECT_FALSE(t->render(deep, false, "", out, error));
  EXPECT_NE(error.find("nested more than 256 levels"), std::string::npos)
      << error;
  EXPECT_EQ(error.rfind("messages[0].c[0][0]", 0), 0u) << error;
}

TEST(ChatTemplate, FromTokenizerConfigString) {
  TempFile config(R"({"bos_token": {"__type": "AddedToken", "content": "<s>"},
                      "eos_token": "</s>",
                      "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"})");
  std::string error, out;
  auto t = ChatTemplate::fromTokenizerConfig(config.path, error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->defaultContextJson(), R"({"bos_token":"<s>","eos_token":"</s>"})");
  ASSERT_TRUE(t->render(R"([{"content":"a"}])", false, "", out, error));
  EXPECT_EQ(out, "<s>a</s>");
  // The caller's context overrides the config's tokens.
  ASSERT_TRUE(t->render(R"([{"content":"a"}])", false,
                        R"({"eos_token":"<E>"})", out, error));
  EXPECT_EQ(out, "<s>a<E>");
}

TEST(ChatTemplate, FromTokenizerConfigListTakesDefault) {
  TempFile config(R"({"chat_template": [
      {"name": "tool_use", "template": "tools"},
      {"name": "default", "template": "plain{{ add_generation_prompt }}"}]})");
  std::string error, out;
  auto t = ChatTemplate::fromTokenizerConfig(config.path, error);
  ASSERT_TRUE(t) << error;
  ASSERT_TRUE(t->render("[]", true, "", out, error));
  EXPECT_EQ(out, "plainTrue");
}

TEST(ChatTemplate, FromTokenizerConfigErrors) {
  std::string error;
  EXPECT_FALSE(ChatTemplate::fromTokenizerConfig("/nonexistent/tc.json", error));
  EXPECT_EQ(error.rfind("/nonexistent/tc.json: cannot read", 0), 0u) << error;

  TempFile none(R"({"bos_token": "<s>"})");
  EXPECT_FALSE(ChatTemplate::fromTokenizerConfig(none.path, error));
  EXPECT_EQ(error, none.path + ": no chat_template");

  TempFile bad(R"({"chat_template": "{% for %}"})");
  EXPECT_FALSE(ChatTemplate::fromTokenizerConfig(bad.path, error));
  EXPECT_EQ(error, bad.path + ": chat_template: line 1: expected a loop "
                              "variable, got '%}'");

  TempFile noDefault(R"({"chat_template": [{"name": "x", "template": ""}]})");
  EXPECT_FALSE(ChatTemplate::fromTokenizerConfig(noDefault.path, error));
  EXPECT_EQ(error,
            noDefault.path + ": chat_template has no entry named \"default\"");

  TempFile truncated(R"({"chat_template": "abc)");
  EXPECT_FALSE(ChatTemplate::fromTokenizerConfig(truncated.path, error));
  EXPECT_EQ(error.rfind(truncated.path + ": invalid JSON", 0), 0u) << error;
}

TEST(ChatCApi, CreateRenderFree) {
  dsrt_chat_template *t = nullptr;
  ASSERT_EQ(dsrt_chat_template_create(
                "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor "
                "%}{% if add_generation_prompt %}>{% endif %}",
                &t),
            DSRT_OK)
      << dsrt_last_error();
  char *out = nullptr;
  ASSERT_EQ(dsrt_chat_template_render(
                t, R"([{"role":"user","content":"héllo"}])", 1, nullptr, &out),
            DSRT_OK)
      << dsrt_last_error();
  EXPECT_STREQ(out, "[user]héllo>");
  dsrt_chat_string_free(out);

  EXPECT_EQ(dsrt_chat_template_render(t, "not json", 0, nullptr, &out),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(std::string(dsrt_last_error()).rfind("messages: invalid JSON", 0),
            0u);
  EXPECT_EQ(dsrt_chat_template_render(nullptr, "[]", 0, nullptr, &out),
            DSRT_ERROR_ARGUMENT);
  dsrt_chat_template_free(t);
  dsrt_chat_template_free(nullptr);
}

TEST(ChatCApi, Errors) {
  dsrt_chat_template *t = nullptr;
  EXPECT_EQ(dsrt_chat_template_create("{% macro x() %}", &t),
            DSRT_ERROR_FORMAT);
  EXPECT_STREQ(dsrt_last_error(),
               "chat_template: line 1: unsupported tag 'macro'");
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(dsrt_chat_template_load("/nonexistent/tokenizer_config.json", &t),
            DSRT_ERROR_IO);
  EXPECT_EQ(dsrt_chat_template_create(nullptr, &t), DSRT_ERROR_ARGUMENT);

  ASSERT_EQ(dsrt_chat_template_create("{{ raise_exception('no system') }}", &t),
            DSRT_OK);
  char *out = nullptr;
  EXPECT_EQ(dsrt_chat_template_render(t, "[]", 0, nullptr, &out),
            DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(), "line 1: raise_exception: no system");
  dsrt_chat_template_free(t);

  TempFile config(R"({"chat_template": "{{ bos_token }}!", "bos_token": "<s>"})");
  ASSERT_EQ(dsrt_chat_template_load(config.path.c_str(), &t), DSRT_OK)
      << dsrt_last_error();
  ASSERT_EQ(dsrt_chat_template_render(t, "[]", 0, "{}", &out), DSRT_OK);
  EXPECT_STREQ(out, "<s>!");
  dsrt_chat_string_free(out);
  dsrt_chat_template_free(t);
}

TEST(ChatCApi, LoadSourceKeepsTheConfigsSpecialTokens) {
  // vLLM's --chat-template: another template, the checkpoint's tokens.
  TempFile config(R"({"chat_template": "old", "bos_token": "<s>"})");
  dsrt_chat_template *t = nullptr;
  ASSERT_EQ(dsrt_chat_template_load_source(config.path.c_str(),
                                           "{{ bos_token }}new", &t),
            DSRT_OK)
      << dsrt_last_error();
  char *out = nullptr;
  ASSERT_EQ(dsrt_chat_template_render(t, "[]", 0, nullptr, &out), DSRT_OK);
  EXPECT_STREQ(out, "<s>new");
  dsrt_chat_string_free(out);
  dsrt_chat_template_free(t);
  // A config without a template of its own is fine.
  TempFile bare(R"({"bos_token": "<b>"})");
  ASSERT_EQ(
      dsrt_chat_template_load_source(bare.path.c_str(), "{{ bos_token }}", &t),
      DSRT_OK);
  dsrt_chat_template_free(t);
  EXPECT_EQ(dsrt_chat_template_load_source(bare.path.c_str(), "{% for %}", &t),
            DSRT_ERROR_FORMAT);
  EXPECT_EQ(std::string(dsrt_last_error()).rfind("chat template: line 1", 0),
            0u)
      << dsrt_last_error();
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(dsrt_chat_template_load_source("/nonexistent/tc.json", "x", &t),
            DSRT_ERROR_IO);
  EXPECT_EQ(dsrt_chat_template_load_source(bare.path.c_str(), nullptr, &t),
            DSRT_ERROR_ARGUMENT);
}

TEST(ChatTemplate, ServeToolsTemplateForDeepSeekV3) {
  // tools/ds-serve/templates/deepseek_v3_tools.jinja: the tools after the
  // system prompt, every call of a message, outputs then the answer.
  std::string error, out;
  auto t = ChatTemplate::parse(
      readFile(std::string(DS_SOURCE_DIR) +
               "/tools/ds-serve/templates/deepseek_v3_tools.jinja"),
      error);
  ASSERT_TRUE(t) << error;
  const char *tools = R"({"bos_token": "<BOS>", "tools": [{"type": "function",
      "function": {"name": "get", "parameters": {"type": "object"}}}]})";
  ASSERT_TRUE(t->render(kToolConversation, true, tools, out, error)) << error;
  EXPECT_EQ(out,
            "<BOS>S\n\n## Tools\nYou can call these functions; each is given "
            "as JSON, its parameters as a JSON Schema:\n"
            R"({"name": "get", "parameters": {"type": "object"}})"
            "\n\nTo call functions, write <｜tool▁calls▁begin｜>, then each "
            "call as <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n"
            "ARGUMENTS\n```<｜tool▁call▁end｜> (ARGUMENTS: one JSON object "
            "that matches the parameters), then <｜tool▁calls▁end｜>. The "
            "results come back as tool outputs."
            "<｜User｜>weather?<｜Assistant｜><｜tool▁calls▁begin｜>"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n"
            "{\"c\": 1}\n```<｜tool▁call▁end｜>\n"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>put\n```json\n{}\n```"
            "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny"
            "<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>done"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>It is sunny."
            "<｜end▁of▁sentence｜><｜Assistant｜>");
  // Ending with tool outputs: the answer continues after them.
  ASSERT_TRUE(t->render(
      R"([{"role": "user", "content": "q"}, {"role": "assistant",
          "content": null, "tool_calls": [{"type": "function", "function":
          {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "r"}])",
      true, R"({"bos_token": ""})", out, error))
      << error;
  EXPECT_EQ(out,
            "<｜User｜>q<｜Assistant｜><｜tool▁calls▁begin｜>"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```"
            "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
}
