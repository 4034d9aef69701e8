//===- ToolCalls.h - DeepSeek tool calls apart from content
//----------------===//
//
// `ds-serve --tool-call-parser deepseek_v3 | deepseek_v31` (vLLM's names):
// a chat answer's text becomes content and OpenAI tool calls as it
// arrives. DeepSeek's models write their calls between their own tokens:
//
//   V3, R1:
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
//            ```json
//            ARGUMENTS
//            ```<｜tool▁call▁end｜> ... <｜tool▁calls▁end｜>
//   V3.1:
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGUMENTS
//            <｜tool▁call▁end｜> ... <｜tool▁calls▁end｜>
//
// Text before the calls is content. A call's name is sent whole, its
// arguments as they arrive; the fence around V3's arguments and whitespace
// at their ends are not part of them (JSON never ends in a backtick, so a
// trailing run of backticks and whitespace is held until the call's end
// decides it). The result does not depend on how the text was split into
// pieces, so a streamed answer and a whole one agree. Nothing generated is
// lost: a call section that never names a call ends up in the content.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_TOOLCALLS_H
#define DS_SERVE_TOOLCALLS_H

#include <optional>
#include <string>
#include <vector>

namespace dsserve {

enum class ToolCallFormat { DeepSeekV3, DeepSeekV31 };

/// "deepseek_v3" (V3, R1) or "deepseek_v31" (V3.1), as vLLM names them.
std::optional<ToolCallFormat> toolCallFormat(const std::string &name);

/// The text a prompt ends with to make the model call a function: any
/// (tool_choice "required": the model writes the name) or `name` (a named
/// tool_choice: the model writes the arguments).
std::string forcedCallPrefix(ToolCallFormat format, const std::string *name);

/// What comes between a call's name and its arguments' JSON (with the
/// name before it): V3's fence, V3.1's separator.
std::string callArgumentsOpening(ToolCallFormat format,
                                 const std::string &name);

/// What comes around a call's arguments' JSON after its name's end (V3:
/// the fence, then the fence's end and the call's end marker; V3.1: the
/// end marker).
void callBodyFrame(ToolCallFormat format, std::string &before,
                   std::string &after);

/// One piece of one call: the first piece of call `index` opens it and
/// carries its name; later ones carry argument text.
struct ToolCallDelta {
  int index = 0;
  bool opens = false;
  std::string name;
  std::string arguments;
};

class ToolCallParser {
public:
  /// Where the answer starts: as content, or inside a call whose prompt
  /// forcedCallPrefix() wrote (`name` null: "required"; else named).
  enum class Start { Content, Forced };
  explicit ToolCallParser(ToolCallFormat format, Start start = Start::Content,
                          const std::string *name = nullptr);

  /// Routes a piece of text: content is appended to `content`, call
  /// pieces to `calls`. A marker split across pieces is held back until
  /// the next piece decides it.
  void push(const std::string &piece, std::string &content,
            std::vector<ToolCallDelta> &calls);
  /// The end of the text: an open call's held arguments are sent, and a
  /// call section that named no call becomes content.
  void finish(std::string &content, std::vector<ToolCallDelta> &calls);

  int callsOpened() const { return opened; }
  int callsClosed() const { return closed; }

private:
  enum class State { Content, Between, Type, Name, Fence, Arguments, After };
  void openCall(const std::string &name, std::vector<ToolCallDelta> &calls);
  /// One step on `held`; false when it needs more text.
  bool step(std::string &content, std::vector<ToolCallDelta> &calls);
  bool stepBetween(std::string &content);
  bool stepArguments(std::vector<ToolCallDelta> &calls);

  ToolCallFormat format;
  State state = State::Content;
  std::string held;
  /// Text of the call section consumed since the last opened call: content
  /// again if no call follows.
  std::string sectionRaw;
  std::string pendingName; // a forced named call, opened on the first push
  bool pendingOpen = false;
  bool argsStarted = false; // leading whitespace of the arguments skipped
  int opened = 0, closed = 0;
};

} // namespace dsserve

#endif // DS_SERVE_TOOLCALLS_H
