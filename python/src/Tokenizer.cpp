//===- Tokenizer.cpp - dsmlir.Tokenizer over the dsrt text C API ----------===//
//
// The same calls ds-run makes (dsrt_text.h); errors raise dsmlir.Error
// with the C API's one-line message. Text may be given as str or as bytes
// (bytes are checked for UTF-8 by the tokenizer, which names the offset).
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt_chat.h"
#include "dsrt/dsrt_text.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

py::object errorType;

[[noreturn]] void raise(const std::string &message) {
  PyErr_SetString(errorType.ptr(), message.c_str());
  throw py::error_already_set();
}

void check(dsrt_status st) {
  if (st != DSRT_OK)
    raise(dsrt_last_error());
}

class TextStream;

class Tokenizer {
public:
  explicit Tokenizer(const std::string &dir) : dir(dir) {
    dsrt_tokenizer *t = nullptr;
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_tokenizer_load(dir.c_str(), &t);
    }
    check(st);
    tok.reset(t, dsrt_tokenizer_free);
  }

  std::vector<int32_t> encodeBytes(const std::string &text,
                                   bool addSpecial) const {
    int32_t *ids = nullptr;
    size_t n = 0;
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_tokenizer_encode(tok.get(), text.data(), text.size(),
                                 addSpecial, &ids, &n);
    }
    check(st);
    std::vector<int32_t> out(ids, ids + n);
    dsrt_text_free(ids);
    return out;
  }

  py::str decode(const std::vector<int32_t> &ids, bool skipSpecial) const {
    char *text = nullptr;
    size_t n = 0;
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_tokenizer_decode(tok.get(), ids.data(), ids.size(), skipSpecial,
                                 &text, &n);
    }
    check(st);
    py::str out(text, n);
    dsrt_text_free(text);
    return out;
  }

  /// The chat template of DIR/tokenizer_config.json, rendered over
  /// `messagesJson` (a JSON array of messages).
  py::str applyChatTemplate(const std::string &messagesJson,
                            bool addGenerationPrompt) {
    if (!chat) {
      std::string config =
          (dir.empty() || dir.back() == '/' ? dir : dir + "/") +
          "tokenizer_config.json";
      dsrt_chat_template *t = nullptr;
      check(dsrt_chat_template_load(config.c_str(), &t));
      chat.reset(t, dsrt_chat_template_free);
    }
    char *out = nullptr;
    dsrt_status st;
    {
      py::gil_scoped_release release;
      st = dsrt_chat_template_render(chat.get(), messagesJson.c_str(),
                                     addGenerationPrompt, nullptr, &out);
    }
    check(st);
    py::str text(out);
    dsrt_chat_string_free(out);
    return text;
  }

  std::string dir;
  std::shared_ptr<dsrt_tokenizer> tok;
  std::shared_ptr<dsrt_chat_template> chat;
};

/// Incremental decoding: push(id) returns the text that id completed.
class TextStream {
public:
  TextStream(const Tokenizer &t, bool skipSpecial) : tok(t.tok) {
    dsrt_text_stream *s = nullptr;
    check(dsrt_text_stream_create(tok.get(), skipSpecial, &s));
    stream.reset(s, dsrt_text_stream_free);
  }
  py::str push(int32_t id) {
    const char *text = nullptr;
    size_t n = 0;
    check(dsrt_text_stream_push(stream.get(), id, &text, &n));
    return py::str(text, n);
  }
  py::str finish() {
    const char *text = nullptr;
    size_t n = 0;
    check(dsrt_text_stream_finish(stream.get(), &text, &n));
    return py::str(text, n);
  }

private:
  std::shared_ptr<dsrt_tokenizer> tok; // outlives the stream
  std::shared_ptr<dsrt_text_stream> stream;
};

} // namespace

void registerTokenizer(py::module &m) {
  errorType = m.attr("Error");
  py::class_<Tokenizer>(m, "Tokenizer")
      .def(py::init<const std::string &>(), py::arg("path"))
      .def("encode", &Tokenizer::encodeBytes, py::arg("text"),
           py::arg("add_special_tokens") = true)
      .def(
          "encode",
          [](const Tokenizer &t, const py::bytes &b, bool addSpecial) {
            return t.encodeBytes(std::string(b), addSpecial);
          },
          py::arg("text"), py::arg("add_special_tokens") = true)
      .def("apply_chat_template", &Tokenizer::applyChatTemplate,
           py::arg("messages_json"), py::arg("add_generation_prompt"))
      .def("decode", &Tokenizer::decode, py::arg("ids"),
           py::arg("skip_special_tokens") = false)
      .def_property_readonly("vocab_size",
                             [](const Tokenizer &t) {
                               return dsrt_tokenizer_vocab_size(t.tok.get());
                             })
      .def_property_readonly("bos_token_id",
                             [](const Tokenizer &t) -> py::object {
                               int32_t id = dsrt_tokenizer_bos_id(t.tok.get());
                               return id < 0 ? py::object(py::none())
                                             : py::object(py::int_(id));
                             })
      .def_property_readonly("eos_token_id",
                             [](const Tokenizer &t) -> py::object {
                               int32_t id = dsrt_tokenizer_eos_id(t.tok.get());
                               return id < 0 ? py::object(py::none())
                                             : py::object(py::int_(id));
                             })
      .def_property_readonly("chat_template",
                             [](const Tokenizer &t) {
                               return std::string(
                                   dsrt_tokenizer_chat_template(t.tok.get()));
                             })
      .def("is_special",
           [](const Tokenizer &t, int32_t id) {
             return dsrt_tokenizer_is_special(t.tok.get(), id) != 0;
           })
      .def("token_to_id",
           [](const Tokenizer &t, const std::string &token) -> py::object {
             int32_t id = dsrt_tokenizer_token_id(t.tok.get(), token.c_str());
             return id < 0 ? py::object(py::none()) : py::object(py::int_(id));
           })
      .def(
          "stream",
          [](const Tokenizer &t, bool skipSpecial) {
            return TextStream(t, skipSpecial);
          },
          py::arg("skip_special_tokens") = false);
  py::class_<TextStream>(m, "TextStream")
      .def("push", &TextStream::push, py::arg("id"))
      .def("finish", &TextStream::finish);
}
