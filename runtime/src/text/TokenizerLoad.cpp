//===- TokenizerLoad.cpp - tokenizer.json + tokenizer_config.json ---------===//
//
// Every field the encoder or decoder would act on is either implemented or
// refused here, naming its JSON path: a tokenizer we cannot reproduce
// exactly must not load and silently produce other ids.
//
//===----------------------------------------------------------------------===//
#include "support/JsonParser.h"
#include "support/OneLine.h"
#include "text/Tokenizer.h"
#include "text/Utf8.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace dsrt;
using namespace dsrt::text;
using json::Value;

namespace {

/// json::describe, but a long string is cut at a character boundary: the
/// message must stay UTF-8 (Python decodes it).
std::string shown(const Value &v) {
  if (v.kind != Value::String || v.string.size() <= 32)
    return json::describe(v);
  size_t cut = 29;
  while (cut > 0 && (uint8_t(v.string[cut]) & 0xC0) == 0x80)
    --cut;
  return "\"" + v.string.substr(0, cut) + "...\"";
}

bool isBool(const Value *v) { return v && v->kind == Value::Bool; }
bool isTrue(const Value *v) { return isBool(v) && v->boolean; }
bool isNullOrAbsent(const Value *v) { return !v || v->isNull(); }
const std::string *stringOf(const Value *v) {
  return v && v->kind == Value::String ? &v->string : nullptr;
}

/// The bytes a token string stands for: its byte symbols mapped back, or,
/// when a character is not a byte symbol (added tokens such as
/// "<｜User｜>"), the string itself as Hugging Face's ByteLevel decoder does.
std::string tokenBytesOf(const std::string &token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    int b = symbolToByte(nextCodepoint(token, i));
    if (b < 0)
      return token;
    out += char(b);
  }
  return out;
}

} // namespace

namespace dsrt::text {

class TokenizerLoader {
public:
  TokenizerLoader(Tokenizer &t, const std::string &jsonName,
                  const std::string &configName, std::string &error)
      : t(t), jsonName(jsonName), configName(configName), error(error) {}

  bool load(std::string_view tokenizerJson, std::string_view config);

private:
  // Paths and reasons quote the file's own strings (tokens, patterns).
  bool fail(const std::string &path, const std::string &why) {
    error = jsonName + ": " + oneLine(path + ": " + why);
    return false;
  }
  bool failConfig(const std::string &path, const std::string &why) {
    error = configName + ": " + oneLine(path + ": " + why);
    return false;
  }
  bool unsupported(const std::string &path, const Value &v,
                   const std::string &what) {
    return fail(path, "unsupported " + shown(v) + " (" + what + ")");
  }
  bool loadModel(const Value &model);
  bool loadMerges(const Value &merges);
  bool loadAddedTokens(const Value *added);
  bool checkNormalizer(const Value *v, const std::string &path);
  bool loadPreTokenizer(const Value *v);
  bool loadPreTokenizerStep(const Value &v, const std::string &path, bool last);
  bool checkDecoder(const Value *v);
  bool checkPostProcessor(const Value *v);
  bool loadConfig(std::string_view text);
  bool specialTokenOf(const Value &root, const char *key, std::string &text,
                      int32_t &id);
  bool setToken(int64_t id, const std::string &content, bool special,
                const std::string &path);
  bool idInRange(int64_t id, const std::string &path);

  /// Ids at or past this are refused: the token tables are indexed by id,
  /// so one huge id in a small file would allocate gigabytes (set in load
  /// from the file's token count).
  int64_t tokenCount = 0, idLimit = 0;

  Tokenizer &t;
  const std::string &jsonName, &configName;
  std::string &error;
};

} // namespace dsrt::text

/// Token files number their tokens densely (gaps between the vocab and
/// the added tokens at most), so an id past twice the file's token count
/// (or its count plus 65536, for small files) is a malformed file, not a
/// vocabulary.
static int64_t tokenIdLimit(int64_t tokens) {
  return std::min<int64_t>(std::max(2 * tokens, tokens + 65536), 1 << 30);
}

bool TokenizerLoader::idInRange(int64_t id, const std::string &path) {
  if (id >= 0 && id < idLimit)
    return true;
  return fail(path, "token id " + std::to_string(id) +
                        " is out of range (the file lists " +
                        std::to_string(tokenCount) +
                        " tokens, so ids must be below " +
                        std::to_string(idLimit) + ")");
}

bool TokenizerLoader::setToken(int64_t id, const std::string &content,
                               bool special, const std::string &path) {
  if (!idInRange(id, path))
    return false;
  if (size_t(id) >= t.bytesOf.size()) {
    t.bytesOf.resize(size_t(id) + 1);
    t.flags.resize(size_t(id) + 1, 0);
  }
  t.bytesOf[size_t(id)] = tokenBytesOf(content);
  t.flags[size_t(id)] =
      Tokenizer::kPresent | (special ? Tokenizer::kSpecial : 0);
  return true;
}

bool TokenizerLoader::loadModel(const Value &model) {
  if (model.kind != Value::Object)
    return fail("model", "expected an object, got " + shown(model));
  const Value *type = model.get("type");
  // Files written by older versions of tokenizers omit model.type.
  if (type && !(type->kind == Value::String && type->string == "BPE"))
    return unsupported("model.type", *type, "only BPE models are supported");
  for (const char *key : {"dropout", "unk_token", "continuing_subword_prefix",
                          "end_of_word_suffix"}) {
    const Value *v = model.get(key);
    if (!isNullOrAbsent(v))
      return unsupported(std::string("model.") + key, *v, "must be null");
  }
  for (const char *key : {"fuse_unk", "byte_fallback", "ignore_merges"}) {
    const Value *v = model.get(key);
    if (isTrue(v))
      return unsupported(std::string("model.") + key, *v, "must be false");
  }
  const Value *vocab = model.get("vocab");
  if (!vocab || vocab->kind != Value::Object)
    return fail("model.vocab",
                vocab ? "expected an object, got " + shown(*vocab) : "missing");
  t.vocab.reserve(vocab->members.size() + 1024);
  for (const auto &[token, idValue] : vocab->members) {
    std::string path = "model.vocab[\"" + token + "\"]";
    if (!idValue.isInteger)
      return fail(path, "expected an integer id, got " + shown(idValue));
    if (!idInRange(idValue.integer, path))
      return false;
    if (!t.vocab.emplace(token, int32_t(idValue.integer)).second)
      return fail(path, "token appears twice");
    if (size_t(idValue.integer) < t.flags.size() &&
        t.flags[size_t(idValue.integer)])
      return fail(path, "token id " + std::to_string(idValue.integer) +
                            " is used twice");
    if (!setToken(idValue.integer, token, false, path))
      return false;
  }
  // Every byte needs a symbol, or some text could not be encoded at all.
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    appendCodepoint(byteToSymbol(uint8_t(b)), symbol);
    auto it = t.vocab.find(symbol);
    if (it == t.vocab.end())
      return fail("model.vocab", "no token for byte " + std::to_string(b) +
                                     " (\"" + symbol +
                                     "\"): not a byte-level vocabulary");
    t.byteIds[b] = it->second;
  }
  const Value *merges = model.get("merges");
  if (!merges || merges->kind != Value::Array)
    return fail("model.merges", merges
                                    ? "expected an array, got " + shown(*merges)
                                    : "missing");
  return loadMerges(*merges);
}

bool TokenizerLoader::loadMerges(const Value &merges) {
  t.merges.reserve(merges.items.size());
  std::string left, right;
  for (size_t i = 0; i < merges.items.size(); ++i) {
    const Value &m = merges.items[i];
    std::string path = "model.merges[" + std::to_string(i) + "]";
    // "a b" (tokenizers < 0.20) or ["a", "b"].
    if (m.kind == Value::String) {
      size_t space = m.string.find(' ');
      if (space == std::string::npos || space == 0 ||
          space + 1 == m.string.size() ||
          m.string.find(' ', space + 1) != std::string::npos)
        return fail(path, "expected \"left right\", got " + shown(m));
      left = m.string.substr(0, space);
      right = m.string.substr(space + 1);
    } else if (m.kind == Value::Array && m.items.size() == 2 &&
               m.items[0].kind == Value::String &&
               m.items[1].kind == Value::String) {
      left = m.items[0].string;
      right = m.items[1].string;
    } else {
      return fail(path,
                  "expected \"left right\" or [left, right], got " + shown(m));
    }
    auto l = t.vocab.find(left), r = t.vocab.find(right),
         merged = t.vocab.find(left + right);
    if (l == t.vocab.end() || r == t.vocab.end())
      return fail(path, "token \"" + (l == t.vocab.end() ? left : right) +
                            "\" is not in model.vocab");
    if (merged == t.vocab.end())
      return fail(path, "merged token \"" + left + right +
                            "\" is not in model.vocab");
    t.merges.insert(l->second, r->second, uint32_t(i), merged->second);
  }
  return true;
}

bool TokenizerLoader::loadAddedTokens(const Value *added) {
  t.trie.assign(1, {});
  if (isNullOrAbsent(added))
    return true;
  if (added->kind != Value::Array)
    return fail("added_tokens", "expected an array, got " + shown(*added));
  for (size_t i = 0; i < added->items.size(); ++i) {
    const Value &a = added->items[i];
    std::string path = "added_tokens[" + std::to_string(i) + "]";
    if (a.kind != Value::Object)
      return fail(path, "expected an object, got " + shown(a));
    const Value *id = a.get("id");
    const std::string *content = stringOf(a.get("content"));
    if (!id || !id->isInteger)
      return fail(path + ".id", "expected an integer");
    if (!content || content->empty())
      return fail(path + ".content", "expected a non-empty string");
    for (const char *key : {"lstrip", "rstrip", "single_word"})
      if (isTrue(a.get(key)))
        return unsupported(path + "." + key, *a.get(key), "must be false");
    // Same id as a vocab entry: only as that entry itself (V3 lists its
    // first special tokens in both), else the id would decode two ways.
    auto same = t.vocab.find(*content);
    bool inVocab = id->integer >= 0 && size_t(id->integer) < t.flags.size() &&
                   t.flags[size_t(id->integer)];
    if (inVocab && !(same != t.vocab.end() && same->second == id->integer))
      return fail(path + ".id", "id " + std::to_string(id->integer) +
                                    " already belongs to another token");
    if (!setToken(id->integer, *content, isTrue(a.get("special")),
                  path + ".id"))
      return false;
    // An added token takes precedence over a vocab entry of the same text.
    t.vocab[*content] = int32_t(id->integer);
    uint32_t node = 0;
    for (char ch : *content) {
      auto &kids = t.trie[node].next;
      uint32_t found = 0;
      for (auto &k : kids)
        if (k.first == uint8_t(ch))
          found = k.second;
      if (!found) {
        found = uint32_t(t.trie.size());
        kids.push_back({uint8_t(ch), found}); // before the trie grows
        t.trie.emplace_back();
      }
      node = found;
    }
    t.trie[node].token = int32_t(id->integer);
    t.startsAdded[uint8_t((*content)[0])] = true;
  }
  return true;
}

bool TokenizerLoader::checkNormalizer(const Value *v, const std::string &path) {
  if (isNullOrAbsent(v))
    return true;
  // DeepSeek ships an empty Sequence: nothing to do.
  const std::string *type = stringOf(v->get("type"));
  const Value *list = v->get("normalizers");
  if (type && *type == "Sequence" && list && list->kind == Value::Array) {
    for (size_t i = 0; i < list->items.size(); ++i)
      if (!checkNormalizer(&list->items[i],
                           path + ".normalizers[" + std::to_string(i) + "]"))
        return false;
    return true;
  }
  const Value *culprit = type ? v->get("type") : v;
  return unsupported(type ? path + ".type" : path, *culprit,
                     "normalizers are not supported");
}

bool TokenizerLoader::loadPreTokenizerStep(const Value &v,
                                           const std::string &path, bool last) {
  const Value *typeValue = v.get("type");
  const std::string *type = stringOf(typeValue);
  if (!type)
    return fail(path + ".type", "missing");
  if (*type == "ByteLevel") {
    // Bytes become symbols inside BPE; what remains to check is that
    // nothing else is asked of this step.
    if (!last)
      return fail(path, "ByteLevel must be the last pre-tokenizer");
    if (isTrue(v.get("add_prefix_space")))
      return unsupported(path + ".add_prefix_space", *v.get("add_prefix_space"),
                         "must be false");
    if (isTrue(v.get("use_regex"))) {
      // GPT-2's own split, which ByteLevel applies when use_regex is set.
      std::string err;
      if (!t.pre.addSplit("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                          "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                          false, err))
        return fail(path, err);
    }
    return true;
  }
  if (last && *type != "Sequence")
    return fail(path, "the pre-tokenizer must end with ByteLevel");
  if (*type == "Split") {
    const Value *behavior = v.get("behavior");
    if (!(stringOf(behavior) && *stringOf(behavior) == "Isolated"))
      return behavior
                 ? unsupported(path + ".behavior", *behavior, "only Isolated")
                 : fail(path + ".behavior", "missing");
    if (isTrue(v.get("invert")))
      return unsupported(path + ".invert", *v.get("invert"), "must be false");
    const Value *pattern = v.get("pattern");
    const std::string *regex =
        pattern ? stringOf(pattern->get("Regex")) : nullptr;
    const std::string *literal =
        pattern ? stringOf(pattern->get("String")) : nullptr;
    if (!regex && !literal)
      return fail(path + ".pattern", "expected {\"Regex\": ...} or "
                                     "{\"String\": ...}");
    std::string err;
    if (!t.pre.addSplit(regex ? *regex : *literal, !regex, err))
      return fail(path + ".pattern", "regex does not compile: " + err);
    return true;
  }
  return unsupported(path + ".type", *typeValue,
                     "pre-tokenizers: Sequence, Split, ByteLevel");
}

bool TokenizerLoader::loadPreTokenizer(const Value *v) {
  if (isNullOrAbsent(v))
    return fail("pre_tokenizer", "missing (a ByteLevel pre-tokenizer is "
                                 "required)");
  const std::string *type = stringOf(v->get("type"));
  if (type && *type == "Sequence") {
    const Value *list = v->get("pretokenizers");
    if (!list || list->kind != Value::Array || list->items.empty())
      return fail("pre_tokenizer.pretokenizers", "expected a non-empty array");
    for (size_t i = 0; i < list->items.size(); ++i) {
      const Value &step = list->items[i];
      std::string path =
          "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]";
      if (step.kind != Value::Object)
        return fail(path, "expected an object, got " + shown(step));
      if (!loadPreTokenizerStep(step, path, i + 1 == list->items.size()))
        return false;
    }
    return true;
  }
  return loadPreTokenizerStep(*v, "pre_tokenizer", true);
}

bool TokenizerLoader::checkDecoder(const Value *v) {
  if (isNullOrAbsent(v))
    return fail("decoder", "missing (a ByteLevel decoder is required)");
  const Value *type = v->get("type");
  if (!(stringOf(type) && *stringOf(type) == "ByteLevel"))
    return type ? unsupported("decoder.type", *type, "only ByteLevel")
                : fail("decoder.type", "missing");
  return true;
}

bool TokenizerLoader::checkPostProcessor(const Value *v) {
  // ByteLevel's post-processing only trims offsets, which we do not
  // report; special tokens come from tokenizer_config.json.
  if (isNullOrAbsent(v))
    return true;
  const Value *type = v->get("type");
  if (!(stringOf(type) && *stringOf(type) == "ByteLevel"))
    return type ? unsupported("post_processor.type", *type,
                              "only ByteLevel or null")
                : fail("post_processor.type", "missing");
  return true;
}

bool TokenizerLoader::specialTokenOf(const Value &root, const char *key,
                                     std::string &text, int32_t &id) {
  const Value *v = root.get(key);
  if (isNullOrAbsent(v))
    return true;
  const std::string *s = stringOf(v);
  if (!s && v->kind == Value::Object)
    s = stringOf(v->get("content"));
  if (!s)
    return failConfig(key, "expected a string or {\"content\": ...}, got " +
                               shown(*v));
  id = t.tokenToId(*s);
  if (id < 0)
    return failConfig(key, "\"" + *s + "\" is not a token of the tokenizer");
  text = *s;
  return true;
}

bool TokenizerLoader::loadConfig(std::string_view text) {
  if (text.empty())
    return true;
  Value root;
  std::string err;
  if (!json::parse(text, root, err)) {
    error = configName + ":" + oneLine(err);
    return false;
  }
  if (root.kind != Value::Object)
    return failConfig("(root)", "expected an object");
  if (!specialTokenOf(root, "bos_token", t.bosText, t.bos) ||
      !specialTokenOf(root, "eos_token", t.eosText, t.eos))
    return false;
  // LlamaTokenizerFast (DeepSeek's class) adds BOS unless told otherwise.
  const std::string *cls = stringOf(root.get("tokenizer_class"));
  bool llama =
      cls && (*cls == "LlamaTokenizerFast" || *cls == "LlamaTokenizer");
  for (auto [key, flag, deflt] :
       {std::make_tuple("add_bos_token", &t.addBos, llama),
        std::make_tuple("add_eos_token", &t.addEos, false)}) {
    const Value *v = root.get(key);
    if (v && !isBool(v) && !v->isNull())
      return failConfig(key, "expected true or false, got " + shown(*v));
    *flag = isBool(v) ? v->boolean : deflt;
  }
  if (t.addBos && t.bos < 0)
    return failConfig("add_bos_token", "is true but bos_token is not set");
  if (t.addEos && t.eos < 0)
    return failConfig("add_eos_token", "is true but eos_token is not set");
  if (isTrue(root.get("clean_up_tokenization_spaces")))
    return failConfig("clean_up_tokenization_spaces",
                      "true is not supported (decoding would differ)");
  const Value *tmpl = root.get("chat_template");
  if (const std::string *s = stringOf(tmpl))
    t.chatTemplateText = *s;
  else if (!isNullOrAbsent(tmpl))
    return failConfig("chat_template", "only a single template string is "
                                       "supported, got " +
                                           shown(*tmpl));
  return true;
}

bool TokenizerLoader::load(std::string_view tokenizerJson,
                           std::string_view config) {
  Value root;
  std::string err;
  if (!json::parse(tokenizerJson, root, err)) {
    error = jsonName + ":" + oneLine(err);
    return false;
  }
  if (root.kind != Value::Object)
    return fail("(root)", "expected an object, got " + shown(root));
  const Value *model = root.get("model");
  if (!model)
    return fail("model", "missing");
  const Value *vocab = model->get("vocab"), *added = root.get("added_tokens");
  tokenCount =
      (vocab && vocab->kind == Value::Object ? int64_t(vocab->members.size())
                                             : 0) +
      (added && added->kind == Value::Array ? int64_t(added->items.size()) : 0);
  idLimit = tokenIdLimit(tokenCount);
  if (!loadModel(*model) || !loadAddedTokens(added) ||
      !checkNormalizer(root.get("normalizer"), "normalizer") ||
      !loadPreTokenizer(root.get("pre_tokenizer")) ||
      !checkDecoder(root.get("decoder")) ||
      !checkPostProcessor(root.get("post_processor")))
    return false;
  const Value *trunc = root.get("truncation"), *pad = root.get("padding");
  if (!isNullOrAbsent(trunc))
    return unsupported("truncation", *trunc, "must be null");
  if (!isNullOrAbsent(pad))
    return unsupported("padding", *pad, "must be null");
  return loadConfig(config);
}

std::unique_ptr<Tokenizer>
Tokenizer::loadFromText(std::string_view tokenizerJson,
                        const std::string &jsonName, std::string_view config,
                        const std::string &configName, std::string &error) {
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  TokenizerLoader loader(*t, jsonName, configName, error);
  if (!loader.load(tokenizerJson, config))
    return nullptr;
  return t;
}

namespace {

bool readFile(const std::string &path, std::string &out, std::string &error) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    error = path + ": is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

} // namespace

std::unique_ptr<Tokenizer> Tokenizer::loadDirectory(const std::string &dir,
                                                    std::string &error,
                                                    bool *ioProblem) {
  bool ignored;
  bool &io = ioProblem ? *ioProblem : ignored;
  io = true;
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    error = dir + ": not a directory";
    return nullptr;
  }
  std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  std::string jsonPath = base + "tokenizer.json",
              configPath = base + "tokenizer_config.json", json, config;
  if (stat(jsonPath.c_str(), &st) != 0) {
    error = jsonPath + ": no such file (a Hugging Face tokenizer.json is "
                       "needed)";
    return nullptr;
  }
  if (!readFile(jsonPath, json, error))
    return nullptr;
  if (stat(configPath.c_str(), &st) == 0) {
    if (!readFile(configPath, config, error))
      return nullptr;
    if (config.empty()) {
      io = false;
      error = configPath + ": empty file";
      return nullptr;
    }
  }
  io = false;
  return loadFromText(json, jsonPath, config, configPath, error);
}
