// ds-serve's HTTP layer through the official openai SDK, curl and raw
// fetch, against ds-serve-fake (FakeBackend: byte tokens replaying SCRIPT).
// Usage: node fake.mjs BUILD_BIN_DIR
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import path from 'node:path';
import { loadOpenAI, startServer, run, metrics, postRaw, until, sleep } from './lib.mjs';

const bin = path.join(process.argv[2], 'ds-serve-fake');
const OpenAI = loadOpenAI();
// FakeBackend::script(): what a greedy request generates, then end of text.
const SCRIPT = 'Hello! Grüße vom Server 🦊. The quick brown fox jumps over the lazy dog.';
const SCRIPT_TOKENS = Buffer.byteLength(SCRIPT);
const bytes = (s) => Buffer.byteLength(s);
// The text of the first n byte tokens, an incomplete last character shown
// as U+FFFD (what the server sends when generation stops inside one).
const prefix = (n) => Buffer.from(SCRIPT.repeat(1 + Math.floor(n / bytes(SCRIPT)))).subarray(0, n).toString('utf8');

const main = await startServer(bin, ['--max-model-len', '256', '--fake-token-delay-ms', '1']);
const client = new OpenAI({ baseURL: `${main.base}/v1`, apiKey: 'unused', maxRetries: 0 });

async function expectError(promise, status, param) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${e.message}`);
    if (param !== undefined) assert.equal(e.param ?? e.error?.param, param);
    assert.equal(typeof e.error?.message, 'string');
    return e;
  }
  assert.fail(`expected a ${status} error`);
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

const tests = [
  ['health and models', async () => {
    assert.equal((await fetch(`${main.base}/health`)).status, 200);
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['fake']);
    assert.equal(models.data[0].max_model_len, 256);
  }],

  ['completion, greedy, length', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'hi', max_tokens: 5, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, 'Hello');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.deepEqual(r.usage, { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7,
                                prompt_tokens_details: { cached_tokens: 0 },
                                completion_tokens_details: { reasoning_tokens: 0 },
                                prompt_cache_hit_tokens: 0, prompt_cache_miss_tokens: 2 });
  }],

  ['completion until end of text counts the end token', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'abc', max_tokens: 200, temperature: 0 });
    assert.equal(r.choices[0].text, SCRIPT);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, SCRIPT_TOKENS + 1);
  }],

  ['ignore_eos runs to max_tokens', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'abc', max_tokens: SCRIPT_TOKENS + 6, temperature: 0, ignore_eos: true });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, SCRIPT_TOKENS + 6);
    assert.equal(r.choices[0].text, SCRIPT + 'Hello!');
  }],

  ['prompt as token ids', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: [72, 105, 33], max_tokens: 3, temperature: 0, return_token_ids: true });
    assert.equal(r.usage.prompt_tokens, 3);
    assert.deepEqual(r.choices[0].token_ids, [72, 101, 108]);
    const bad = await expectError(client.completions.create({ model: 'fake', prompt: [1, 300], max_tokens: 1 }), 400, 'prompt');
    assert.match(bad.error.message, /300 is outside the vocabulary/);
  }],

  ['stop strings: text before the stop, never half a character', async () => {
    for (const [stop, before] of [['fox', 'Hello! Grüße vom Server 🦊. The quick brown '],
                                  ['🦊', 'Hello! Grüße vom Server '],
                                  ['ü', 'Hello! Gr'],
                                  ['xyz', SCRIPT]]) {
      const r = await client.completions.create({ model: 'fake', prompt: 'p', max_tokens: 200, temperature: 0, stop: [stop, 'never'] });
      assert.equal(r.choices[0].text, before, `stop ${stop}`);
      assert.equal(r.choices[0].finish_reason, 'stop');
      const s = await collect(await client.completions.create({ model: 'fake', prompt: 'p', max_tokens: 200, temperature: 0, stop, stream: true }));
      const pieces = s.map((c) => c.choices[0]?.text ?? '');
      assert.equal(pieces.join(''), before, `streamed, stop ${stop}`);
      for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `a chunk cut a character: ${JSON.stringify(pieces)}`);
      assert.equal(s.at(-1).choices[0].finish_reason, 'stop');
    }
    // A stop that the text reaches only in its last bytes, split over tokens.
    const r = await client.completions.create({ model: 'fake', prompt: 'p', max_tokens: 200, temperature: 0, stop: 'dog.' });
    assert.equal(r.choices[0].text, SCRIPT.slice(0, -4));
  }],

  ['max_tokens defaults to 16 on completions, to the context on chat', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'hey', temperature: 0, ignore_eos: true });
    assert.equal(r.usage.completion_tokens, 16);
    assert.equal(r.choices[0].finish_reason, 'length');
    const c = await client.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'x' }], temperature: 0 });
    assert.equal(c.usage.completion_tokens, SCRIPT_TOKENS + 1); // the script, then eos
  }],

  ['streamed completion: deltas, usage chunk, [DONE]', async () => {
    const chunks = await collect(await client.completions.create({
      model: 'fake', prompt: 'hey', max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, { prompt_tokens: 3, completion_tokens: 12, total_tokens: 15,
                                    prompt_tokens_details: { cached_tokens: 0 },
                                    completion_tokens_details: { reasoning_tokens: 0 },
                                    prompt_cache_hit_tokens: 0, prompt_cache_miss_tokens: 3 });
    const body = chunks.slice(0, -1);
    for (const c of body) assert.equal(c.usage, null);
    assert.equal(body.map((c) => c.choices[0].text).join(''), prefix(12));
    assert.equal(body.at(-1).choices[0].finish_reason, 'length');
  }],

  ['chat through the template, whole and streamed', async () => {
    const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi there' }];
    const rendered = JSON.stringify(messages.map((m) => ({ content: m.content, role: m.role }))) + '\n<|assistant|>\n';
    const r = await client.chat.completions.create({ model: 'fake', messages, max_completion_tokens: 6, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'Hello!');
    assert.equal(r.choices[0].finish_reason, 'length');
    const cached = r.usage.prompt_tokens_details.cached_tokens;
    assert.deepEqual(r.usage, { prompt_tokens: bytes(rendered), completion_tokens: 6, total_tokens: bytes(rendered) + 6,
                                prompt_tokens_details: { cached_tokens: cached },
                                completion_tokens_details: { reasoning_tokens: 0 },
                                prompt_cache_hit_tokens: cached, prompt_cache_miss_tokens: bytes(rendered) - cached });

    const chunks = await collect(await client.chat.completions.create({
      model: 'fake', messages, max_tokens: 150, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, SCRIPT);
    const fin = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
    assert.equal(fin.length, 1);
    assert.equal(fin[0].choices[0].finish_reason, 'stop');
    assert.equal(chunks.at(-1).usage.completion_tokens, SCRIPT_TOKENS + 1);
  }],

  ['seeded sampling is reproducible', async () => {
    const a = await client.completions.create({ model: 'fake', prompt: 'x', max_tokens: 8, temperature: 0.8, seed: 1234 });
    const b = await client.completions.create({ model: 'fake', prompt: 'x', max_tokens: 8, temperature: 0.8, seed: 1234 });
    assert.equal(a.choices[0].text, b.choices[0].text);
  }],

  ['echo: the prompt, then the completion, and with logprobs the prompt\'s', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'ab', max_tokens: 2, temperature: 0, echo: true, logprobs: 1 });
    assert.equal(r.choices[0].text, 'abHe');
    const lp = r.choices[0].logprobs;
    assert.deepEqual(lp.tokens, ['a', 'b', 'H', 'e']);
    assert.deepEqual(lp.token_logprobs, [null, -0.5, -0.25, -0.25]);
    assert.deepEqual(lp.top_logprobs, [null, { b: -0.5 }, { H: -0.25 }, { e: -0.25 }]);
    assert.deepEqual(lp.text_offset, [0, 1, 2, 3]);
    // Streamed: the first chunk carries the whole prompt with its logprobs.
    const chunks = await collect(await client.completions.create({ model: 'fake', prompt: 'ab', max_tokens: 2, temperature: 0, echo: true, logprobs: 1, stream: true }));
    assert.ok(chunks[0].choices[0].text.startsWith('ab'));
    assert.deepEqual(chunks[0].choices[0].logprobs.token_logprobs.slice(0, 2), [null, -0.5]);
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'abHe');
    // max_tokens 0 scores the prompt alone; without echo it is refused.
    const z = await client.completions.create({ model: 'fake', prompt: 'abc', max_tokens: 0, echo: true, logprobs: 0 });
    assert.equal(z.choices[0].text, 'abc');
    assert.deepEqual(z.choices[0].logprobs.token_logprobs, [null, -0.5, -0.5]);
    assert.equal(z.usage.completion_tokens, 0);
    await expectError(client.completions.create({ model: 'fake', prompt: 'abc', max_tokens: 0 }), 400, 'max_tokens');
    await expectError(client.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'x' }], echo: true }), 400, 'echo');
  }],

  ['logprobs: completions and chat shapes', async () => {
    const r = await client.completions.create({ model: 'fake', prompt: 'x', max_tokens: 4, temperature: 0, logprobs: 2 });
    const lp = r.choices[0].logprobs;
    assert.deepEqual(lp.tokens, ['H', 'e', 'l', 'l']);
    assert.deepEqual(lp.token_logprobs, [-0.25, -0.25, -0.25, -0.25]);
    assert.deepEqual(lp.top_logprobs[0], { H: -0.25, I: -2 });
    assert.deepEqual(lp.text_offset, [0, 1, 2, 3]);
    const c = await client.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = c.choices[0].logprobs.content;
    assert.equal(content.length, 3);
    assert.equal(content[0].token, 'H');
    assert.deepEqual(content[0].bytes, [72]);
    assert.equal(content[0].top_logprobs.length, 3);
    const s = await collect(await client.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, temperature: 0, logprobs: true, stream: true }));
    const streamed = s.flatMap((ch) => ch.choices[0]?.logprobs?.content ?? []);
    assert.deepEqual(streamed.map((t) => t.token), ['H', 'e', 'l']);
  }],

  ['errors: OpenAI error objects with the right status', async () => {
    await expectError(client.completions.create({ model: 'fake', prompt: 'x', n: 0 }), 400, 'n');
    await expectError(client.completions.create({ model: 'fake', prompt: 'x', n: 129 }), 400, 'n');
    await expectError(client.completions.create({ model: 'fake', prompt: 'x', temperature: 'hot' }), 400, 'temperature');
    await expectError(client.completions.create({ model: 'fake', prompt: 'x', max_tokens: -1 }), 400, 'max_tokens');
    await expectError(client.completions.create({ model: 'fake', prompt: 'x', stop: 5 }), 400, 'stop');
    await expectError(client.chat.completions.create({ model: 'fake', messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages');
    await expectError(client.chat.completions.create({ model: 'fake', messages: [] }), 400, 'messages');
    await expectError(client.completions.create({ model: 'fake', prompt: ['a', 7] }), 400, 'prompt');
    const batchCtx = await expectError(client.completions.create({ model: 'fake', prompt: ['a', 'x'.repeat(300)] }), 400);
    assert.match(batchCtx.error.message, /^prompt 1: /);
    const ctx = await expectError(client.completions.create({ model: 'fake', prompt: 'x'.repeat(300) }), 400);
    assert.equal(ctx.code, 'context_length_exceeded');
    const ctx2 = await expectError(client.completions.create({ model: 'fake', prompt: 'x'.repeat(100), max_tokens: 200 }), 400, 'max_tokens');
    assert.match(ctx2.message, /maximum context length is 256/);
    const nf = await expectError(client.completions.create({ model: 'gpt-4', prompt: 'x' }), 404, 'model');
    assert.equal(nf.code, 'model_not_found');

    for (const [body, re] of [['{"prompt": "x", ', /malformed JSON/], ['[1, 2]', /JSON object/], ['', /malformed JSON/],
                              ['{"prompt": "x", "stream": "yes"}', /'stream' must be a boolean/]]) {
      const r = await postRaw(main.base, '/v1/completions', body);
      assert.equal(r.status, 400, body);
      assert.match(r.json.error.message, re);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.ok('param' in r.json.error && 'code' in r.json.error);
    }
    const nr = await fetch(`${main.base}/v1/nothing`);
    assert.equal(nr.status, 404);
    assert.match((await nr.json()).error.message, /no route/);
    // The server still answers normally afterwards.
    const ok = await client.completions.create({ model: 'fake', prompt: 'hi', max_tokens: 2, temperature: 0 });
    assert.equal(ok.choices[0].text, 'He');
  }],

  ['curl: SSE framing on the wire', async () => {
    const out = spawnSync('curl', ['-sN', '--max-time', '20', '-D', '-', '-H', 'content-type: application/json',
      '-d', JSON.stringify({ prompt: 'x', max_tokens: 3, temperature: 0, stream: true }), `${main.base}/v1/completions`],
      { encoding: 'utf8', timeout: 30000 });
    assert.equal(out.status, 0, out.stderr);
    const [head, body] = out.stdout.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /content-type: text\/event-stream/i);
    assert.match(head, /transfer-encoding: chunked/i);
    const events = body.split('\n\n');
    assert.equal(events.pop(), '');
    assert.equal(events.pop(), 'data: [DONE]');
    const texts = events.map((e) => {
      assert.match(e, /^data: \{.*\}$/);
      return JSON.parse(e.slice(6)).choices[0].text;
    });
    assert.equal(texts.join(''), 'Hel');
  }],

  ['metrics: Prometheus counters and histograms', async () => {
    const before = await metrics(main.base);
    await client.completions.create({ model: 'fake', prompt: 'abcd', max_tokens: 7, temperature: 0 });
    const after = await metrics(main.base);
    assert.equal(after.ds_prompt_tokens_total - before.ds_prompt_tokens_total, 4);
    assert.equal(after.ds_generation_tokens_total - before.ds_generation_tokens_total, 7);
    assert.equal(after.ds_time_to_first_token_seconds_count - before.ds_time_to_first_token_seconds_count, 1);
    assert.equal(after.ds_inter_token_latency_seconds_count - before.ds_inter_token_latency_seconds_count, 6);
    assert.equal(after['ds_request_success_total{finished_reason="length"}'] - before['ds_request_success_total{finished_reason="length"}'], 1);
    for (const k of ['ds_num_requests_running', 'ds_num_requests_waiting', 'ds_cache_pages_used', 'ds_cache_pages_cached', 'ds_prefix_cache_hits_total'])
      assert.ok(k in after, k);
    assert.equal(after['ds_time_to_first_token_seconds_bucket{le="+Inf"}'], after.ds_time_to_first_token_seconds_count);
  }],
];

// Servers of their own: slow tokens for disconnects and queueing, a key.
tests.push(['client disconnect aborts the request and frees its pages', async () => {
  const slow = await startServer(bin, ['--fake-token-delay-ms', '20', '--max-model-len', '512']);
  try {
    const ac = new AbortController();
    const c = new OpenAI({ baseURL: `${slow.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await c.completions.create({ prompt: 'p'.repeat(100), max_tokens: 400, temperature: 0, ignore_eos: true, stream: true }, { signal: ac.signal });
    let n = 0;
    try {
      for await (const chunk of stream) { if (++n === 3) ac.abort(); }
    } catch (e) { assert.match(String(e.name), /Abort/); }
    const running = await metrics(slow.base);
    assert.ok(running.ds_cache_pages_used > 0 || running.ds_num_requests_running === 0);
    const m = await until('the aborted request to leave', async () => {
      const m = await metrics(slow.base);
      return m.ds_num_requests_running === 0 && m.ds_cache_pages_used === 0 && m.ds_http_requests_in_flight === 0 ? m : null;
    });
    assert.equal(m['ds_request_success_total{finished_reason="abort"}'], 1);
    assert.ok(m.ds_generation_tokens_total < 400, 'the request ran on after the client left');
  } finally { slow.proc.kill('SIGKILL'); }
}]);

tests.push(['bounded queue: 429 past max in flight, the others unharmed', async () => {
  const q = await startServer(bin, ['--fake-token-delay-ms', '10', '--max-num-seqs', '1', '--max-waiting', '2']);
  try {
    const c = new OpenAI({ baseURL: `${q.base}/v1`, apiKey: 'x', maxRetries: 0 });
    // Each takes about a second, so all 8 overlap: 3 are admitted (1
    // running + 2 waiting), the rest refused at once.
    const results = await Promise.allSettled(Array.from({ length: 8 }, () =>
      c.completions.create({ prompt: 'x', max_tokens: 100, temperature: 0, ignore_eos: true })));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    assert.ok(ok.length >= 3 && refused.length >= 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of ok) assert.equal(r.value.choices[0].text, prefix(100));
    // 429 from the server's admission bound; 503 when the engine's own
    // waiting queue is full (a seat freed but the engine has not moved a
    // waiting request in yet). Either way an error object, nothing queued.
    for (const r of refused) {
      assert.ok([429, 503].includes(r.reason.status), String(r.reason));
      assert.equal(typeof r.reason.error.message, 'string');
    }
    assert.ok(refused.some((r) => r.reason.status === 429 && r.reason.code === 'rate_limit_exceeded'));
    const m = await metrics(q.base);
    assert.equal((m['ds_http_responses_total{status="429"}'] ?? 0) + (m['ds_http_responses_total{status="503"}'] ?? 0),
                 refused.length);
  } finally { q.proc.kill('SIGKILL'); }
}]);

tests.push(['--reasoning-parser deepseek_r1: reasoning_content apart from content on chat', async () => {
  const text = '<think>\nThe capital.\n</think>\n\nParis.';
  const s = await startServer(bin, ['--reasoning-parser', 'deepseek_r1', '--fake-text', text]);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'x' }];
    const r = await c.chat.completions.create({ messages, temperature: 0 });
    assert.equal(r.choices[0].message.reasoning_content, '\nThe capital.\n');
    assert.equal(r.choices[0].message.content, '\n\nParis.');
    // Byte tokens: those up to the one closing the thinking are reasoning.
    assert.equal(r.usage.completion_tokens_details.reasoning_tokens, bytes('<think>\nThe capital.\n</think>'));
    let reasoning = '', content = '';
    for await (const ch of await c.chat.completions.create({ messages, temperature: 0, stream: true })) {
      const d = ch.choices[0]?.delta ?? {};
      assert.ok(!(d.reasoning_content && d.content), 'one kind a chunk');
      reasoning += d.reasoning_content ?? '';
      content += d.content ?? '';
    }
    assert.equal(reasoning, '\nThe capital.\n');
    assert.equal(content, '\n\nParis.');
    // Completions are text as generated.
    const t = await c.completions.create({ prompt: 'x', max_tokens: 64, temperature: 0 });
    assert.equal(t.choices[0].text, text);
    // The Responses API: a reasoning item, then the message, whole or streamed.
    for (const r of [await c.responses.create({ input: 'x', temperature: 0 }),
                     await c.responses.stream({ input: 'x', temperature: 0 }).finalResponse()]) {
      assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
      assert.equal(r.usage.output_tokens_details.reasoning_tokens, bytes('<think>\nThe capital.\n</think>'));
      assert.equal(r.output[0].content[0].text, '\nThe capital.\n');
      assert.equal(r.output_text, '\n\nParis.');
    }
    // Prefix completion: a continued message of answer text is continued
    // as content; one that left the thinking open, as reasoning.
    const answer = await c.chat.completions.create({ temperature: 0, max_tokens: 64,
      messages: [...messages, { role: 'assistant', content: 'The answer:', prefix: true }] });
    assert.equal(answer.choices[0].message.content, text);
    assert.equal(answer.choices[0].message.reasoning_content, null);
    for (const prefix of ['<think>Hmm,', '<think>a</think>b<think>c'])
    {
      const open = await c.chat.completions.create({ temperature: 0, max_tokens: 64,
        messages: [...messages, { role: 'assistant', content: prefix, prefix: true }] });
      assert.equal(open.choices[0].message.reasoning_content, '\nThe capital.\n', prefix);
    }
  } finally { s.proc.kill('SIGKILL'); }
}]);

// DeepSeek V3's tool-call tokens (--tool-call-parser deepseek_v3).
const CB = '<｜tool▁calls▁begin｜>', CE = '<｜tool▁calls▁end｜>', B = '<｜tool▁call▁begin｜>',
  E = '<｜tool▁call▁end｜>', S = '<｜tool▁sep｜>';
const v3Call = (name, args) => `${B}function${S}${name}\n\`\`\`json\n${args}\n\`\`\`${E}`;
const WEATHER = {
  type: 'function',
  function: { name: 'get_weather', description: 'The weather in a city.',
              parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

// Room for tool definitions and a runTools history in byte tokens.
const BIG = ['--max-model-len', '8192', '--fake-pages', '2048'];

tests.push(['tool calls (auto): whole, streamed, and a runTools loop through the SDK', async () => {
  const text = 'Let me look.' + CB + v3Call('get_weather', '{"city": "Paris"}') + '\n' +
               v3Call('get_weather', '{"city": "Zürich"}') + CE;
  const s = await startServer(bin, ['--tool-call-parser', 'deepseek_v3', '--enable-auto-tool-choice',
                                    '--fake-text', text, '--fake-token-delay-ms', '0', ...BIG]);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'Weather in Paris and Zürich?' }];
    const r = await c.chat.completions.create({ messages, tools: [WEATHER], temperature: 0 });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.content, 'Let me look.');
    assert.deepEqual(m.tool_calls.map((t) => [t.type, t.function.name, JSON.parse(t.function.arguments)]),
                     [['function', 'get_weather', { city: 'Paris' }], ['function', 'get_weather', { city: 'Zürich' }]]);
    assert.notEqual(m.tool_calls[0].id, m.tool_calls[1].id);
    // The SDK's stream helper adds the deltas up to the same message.
    const stream = c.chat.completions.stream({ messages, tools: [WEATHER], temperature: 0 });
    const final = await stream.finalChatCompletion();
    const fm = final.choices[0].message;
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(fm.content, 'Let me look.');
    assert.deepEqual(fm.tool_calls.map((t) => [t.function.name, t.function.arguments]),
                     m.tool_calls.map((t) => [t.function.name, t.function.arguments]));
    // runTools: the SDK calls the function with the parsed arguments and
    // sends the calls and their results back; the server takes that
    // history (the fake answers with the same calls each time).
    const seen = [];
    const runner = c.chat.completions.runTools({
      messages, temperature: 0,
      tools: [{ type: 'function', function: { ...WEATHER.function, parse: JSON.parse,
                                               function: (args) => { seen.push(args.city); return 'sunny'; } } }],
    }, { maxChatCompletions: 3 });
    await runner.done();
    assert.deepEqual(seen, ['Paris', 'Zürich', 'Paris', 'Zürich', 'Paris', 'Zürich']);
    const sent = runner.messages.map((x) => x.role);
    assert.deepEqual(sent.slice(0, 4), ['user', 'assistant', 'tool', 'tool']);
    // Tools reach the template: the prompt grows by their JSON.
    const plain = await c.chat.completions.create({ messages, temperature: 0, max_tokens: 1 });
    const withTools = await c.chat.completions.create({ messages, tools: [WEATHER], temperature: 0, max_tokens: 1 });
    assert.ok(withTools.usage.prompt_tokens > plain.usage.prompt_tokens + bytes(JSON.stringify(WEATHER.function.parameters)));
    // Without tools the calls are text, as generated.
    assert.equal(plain.choices[0].message.tool_calls, undefined);
  } finally { s.proc.kill('SIGKILL'); }
}]);

tests.push(['tool calls (auto): an opened call\'s arguments follow the parameters', async () => {
  // The "model" writes a key the function does not have: the constraint
  // puts the one it has instead (the fake takes the lowest allowed byte
  // where the script's is not allowed), and the text around stays free.
  const text = 'Sure.' + CB + v3Call('get_weather', '{"town": "Paris"}') + CE;
  const s = await startServer(bin, ['--tool-call-parser', 'deepseek_v3', '--enable-auto-tool-choice',
                                    '--fake-text', text, '--fake-token-delay-ms', '0', ...BIG]);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'Paris?' }];
    const r = await c.chat.completions.create({ messages, tools: [WEATHER], temperature: 0 });
    const m = r.choices[0].message;
    assert.equal(m.content, 'Sure.');
    assert.equal(m.tool_calls.length, 1);
    const args = JSON.parse(m.tool_calls[0].function.arguments);
    assert.deepEqual(Object.keys(args), ['city']);
    assert.equal(typeof args.city, 'string');
    // Without tools the same script is text as written.
    const plain = await c.chat.completions.create({ messages, temperature: 0, max_tokens: 200 });
    assert.ok(plain.choices[0].message.content.includes('"town"'));
  } finally { s.proc.kill('SIGKILL'); }
}]);

tests.push(['tool calls: named and required tool_choice, refusals without the flags', async () => {
  // Named: the prompt opens the call; the model writes its arguments.
  const args = '{"city": "Oslo"}';
  const s = await startServer(bin, ['--tool-call-parser', 'deepseek_v3', '--fake-token-delay-ms', '0', ...BIG,
                                    '--fake-text', args + '\n```' + E + '\n' + v3Call('other', '{}') + CE]);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'Oslo?' }];
    const tool_choice = { type: 'function', function: { name: 'get_weather' } };
    const r = await c.chat.completions.create({ messages, tools: [WEATHER], tool_choice, temperature: 0 });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(m.content, null);
    assert.deepEqual(m.tool_calls.map((t) => [t.function.name, t.function.arguments]), [['get_weather', args]]);
    // The answer ends with the call: its arguments follow the parameters,
    // and once they are whole only eos may come.
    assert.equal(r.usage.completion_tokens, bytes(args) + 1);
    // The prompt ends with the call's opening.
    const auto = await postRaw(s.base, '/v1/chat/completions',
                               JSON.stringify({ messages, tools: [WEATHER], tool_choice: 'none', max_tokens: 1 }));
    assert.equal(auto.status, 200);
    assert.equal(r.usage.prompt_tokens - auto.json.usage.prompt_tokens,
                 bytes(CB + B + 'function' + S + 'get_weather\n```json\n'));
    const streamed = await c.chat.completions.stream({ messages, tools: [WEATHER], tool_choice, temperature: 0 })
      .finalChatCompletion();
    assert.equal(streamed.choices[0].message.tool_calls[0].function.arguments, args);
    // "auto" needs --enable-auto-tool-choice, as in vLLM.
    const e = await expectError(c.chat.completions.create({ messages, tools: [WEATHER] }), 400, 'tool_choice');
    assert.match(e.message, /--enable-auto-tool-choice/);
  } finally { s.proc.kill('SIGKILL'); }
  // Required: the model names the function.
  const q = await startServer(bin, ['--tool-call-parser', 'deepseek_v31', '--fake-token-delay-ms', '0', ...BIG,
                                    '--fake-text', 'get_weather' + S + '{"city":"Rome"}' + E + CE]);
  try {
    const c = new OpenAI({ baseURL: `${q.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const r = await c.chat.completions.create({ messages: [{ role: 'user', content: '?' }], tools: [WEATHER],
                                                tool_choice: 'required', temperature: 0 });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(r.choices[0].message.tool_calls.map((t) => [t.function.name, t.function.arguments]),
                     [['get_weather', '{"city":"Rome"}']]);
  } finally { q.proc.kill('SIGKILL'); }
  // No parser: tools with a tool choice are refused, tool_choice none is served.
  const messages = [{ role: 'user', content: 'x' }];
  const e = await expectError(client.chat.completions.create({ messages, tools: [WEATHER], tool_choice: 'required' }),
                              400, 'tool_choice');
  assert.match(e.message, /--tool-call-parser/);
  const none = await client.chat.completions.create({ messages, tools: [WEATHER], tool_choice: 'none', max_tokens: 3 });
  assert.equal(none.choices[0].message.tool_calls, undefined);
  await expectError(client.chat.completions.create({ messages, tools: [{ type: 'function', function: { name: 'a b' } }] }),
                    400, 'tools');
}]);

tests.push(['Responses API: text, streamed events, function calls and their outputs', async () => {
  const r = await client.responses.create({ model: 'fake', input: 'hi', max_output_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'response');
  assert.equal(r.output_text, 'Hello');
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.usage.output_tokens, 5);
  const whole = await client.responses.create({ input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
                                               instructions: 'be brief', temperature: 0, max_output_tokens: 100 });
  assert.equal(whole.status, 'completed');
  assert.equal(whole.output_text, SCRIPT);
  assert.equal(whole.instructions, 'be brief');
  // Streamed: the SDK's accumulator takes our events to the same response.
  const stream = client.responses.stream({ input: 'hi', temperature: 0, max_output_tokens: 100 });
  const types = new Set();
  stream.on('event', (e) => types.add(e.type));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, SCRIPT);
  assert.equal(final.status, 'completed');
  for (const t of ['response.created', 'response.output_item.added', 'response.content_part.added',
                   'response.output_text.delta', 'response.output_text.done', 'response.output_item.done',
                   'response.completed'])
    assert.ok(types.has(t), t);
  // Function calls (the fake replays a V3 call) and their outputs sent back.
  const text = 'Let me look.' + CB + v3Call('get_weather', '{"city": "Paris"}') + CE;
  const s = await startServer(bin, ['--tool-call-parser', 'deepseek_v3', '--enable-auto-tool-choice',
                                    '--fake-text', text, '--fake-token-delay-ms', '0', ...BIG]);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const tools = [{ type: 'function', name: 'get_weather', parameters: WEATHER.function.parameters, strict: false }];
    const input = [{ role: 'user', content: 'Weather in Paris?' }];
    for (const streamed of [false, true]) {
      const resp = streamed ? await c.responses.stream({ input, tools, temperature: 0 }).finalResponse()
                            : await c.responses.create({ input, tools, temperature: 0 });
      assert.equal(resp.status, 'completed');
      assert.equal(resp.output_text, 'Let me look.');
      const calls = resp.output.filter((o) => o.type === 'function_call');
      assert.deepEqual(calls.map((o) => [o.name, JSON.parse(o.arguments)]), [['get_weather', { city: 'Paris' }]]);
      assert.ok(calls[0].call_id);
      const next = await c.responses.create({ temperature: 0, tools, max_output_tokens: 3, input: [
        ...input, ...calls, { type: 'function_call_output', call_id: calls[0].call_id, output: 'sunny' }] });
      assert.equal(next.status, 'incomplete');
    }
    // What this server cannot do is a 400 naming the field.
    const refusals = [
      [{ input: 'x', previous_response_id: 'resp_1' }, 'previous_response_id'],
      [{ input: 'x', tools: [{ type: 'web_search' }] }, 'tools'],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input'],
      [{}, 'input'],
    ];
    for (const [body, param] of refusals) {
      const e = await expectError(c.responses.create(body), 400);
      assert.equal(e.param ?? e.error?.param, param, JSON.stringify(body));
    }
  } finally { s.proc.kill('SIGKILL'); }
}]);

tests.push(['prefix cache: the cached part of a prompt in usage (chat, Responses, streamed)', async () => {
  // The fake remembers prompts' full 16-token pages, as an engine's cache.
  const prompt = 'A long shared system prompt that several requests repeat ' + Date.now();
  const first = await client.completions.create({ prompt, max_tokens: 2, temperature: 0 });
  assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
  const again = await client.completions.create({ prompt, max_tokens: 2, temperature: 0 });
  const p = again.usage.prompt_tokens;
  assert.equal(again.usage.prompt_tokens_details.cached_tokens, Math.floor((p - 1) / 16) * 16);
  // A longer prompt sharing the start reads its pages; the streamed usage too.
  const chunks = await collect(await client.completions.create({ prompt: prompt + ' and more', max_tokens: 2,
    temperature: 0, stream: true, stream_options: { include_usage: true } }));
  assert.equal(chunks.at(-1).usage.prompt_tokens_details.cached_tokens, Math.floor(p / 16) * 16);
  const r = await client.responses.create({ input: prompt, max_output_tokens: 2, temperature: 0 });
  const r2 = await client.responses.create({ input: prompt, max_output_tokens: 2, temperature: 0 });
  assert.ok(r2.usage.input_tokens_details.cached_tokens > r.usage.input_tokens_details.cached_tokens);
}]);

tests.push(['priority scheduling: lower priority values first; refused without the policy', async () => {
  const e = await expectError(client.completions.create({ prompt: 'x', max_tokens: 1, priority: 1 }), 400, 'priority');
  assert.match(e.message, /--scheduling-policy priority/);
  const s = await startServer(bin, ['--scheduling-policy', 'priority', '--max-num-seqs', '1',
                                    '--fake-token-delay-ms', '20', '--max-model-len', '512']);
  try {
    const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const order = [];
    const req = (name, priority) =>
      c.completions.create({ prompt: name, max_tokens: 2, temperature: 0, priority, ignore_eos: true })
        .then(() => order.push(name));
    // The busy request holds the one seat until all three wait (its 400
    // tokens would take 8 s), then leaves: no step of the test races a clock.
    const ac = new AbortController();
    const busy = await c.completions.create({ prompt: 'busy', max_tokens: 400, temperature: 0, ignore_eos: true,
                                              stream: true }, { signal: ac.signal });
    const drained = (async () => { try { for await (const _ of busy); } catch {} })();
    await until('busy to run', async () => (await metrics(s.base)).ds_num_requests_running === 1);
    const queued = [req('low', 10)];
    await until('low to wait', async () => (await metrics(s.base)).ds_num_requests_waiting === 1);
    queued.push(req('high', -5));
    await until('high to wait', async () => (await metrics(s.base)).ds_num_requests_waiting === 2);
    queued.push(req('mid', 0));
    await until('mid to wait', async () => (await metrics(s.base)).ds_num_requests_waiting === 3);
    ac.abort();
    await Promise.all([drained, ...queued]);
    assert.deepEqual(order, ['high', 'mid', 'low']);
  } finally { s.proc.kill('SIGKILL'); }
}]);

tests.push(['API key: 401 without or with a wrong key', async () => {
  const k = await startServer(bin, ['--api-key', 'sekret']);
  try {
    const bad = new OpenAI({ baseURL: `${k.base}/v1`, apiKey: 'wrong', maxRetries: 0 });
    const e = await expectError(bad.completions.create({ prompt: 'x', max_tokens: 1 }), 401);
    assert.equal(e.code, 'invalid_api_key');
    await expectError(bad.models.list(), 401);
    const none = await postRaw(k.base, '/v1/chat/completions', '{}');
    assert.equal(none.status, 401);
    // The tokenizer routes sit behind the key too.
    assert.equal((await postRaw(k.base, '/tokenize', '{"prompt":"x"}')).status, 401);
    const tok = await postRaw(k.base, '/tokenize', '{"prompt":"ab"}', { authorization: 'Bearer sekret' });
    assert.deepEqual(tok.json.tokens, [97, 98]);
    const good = new OpenAI({ baseURL: `${k.base}/v1`, apiKey: 'sekret', maxRetries: 0 });
    const r = await good.completions.create({ prompt: 'x', max_tokens: 2, temperature: 0 });
    assert.equal(r.choices[0].text, 'He');
    assert.equal((await fetch(`${k.base}/health`)).status, 200); // probes need no key
  } finally { k.proc.kill('SIGKILL'); }
}]);

tests.push(['SIGTERM: refuses new requests, finishes in-flight ones, exits 0', async () => {
  const s = await startServer(bin, ['--fake-token-delay-ms', '20']);
  const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
  // 100 tokens at 20 ms: both still run when SIGTERM comes, even on a
  // loaded machine; SIGTERM is sent only once the server runs both (a fixed
  // sleep let a slow admission turn the in-flight request into a 503).
  const inflight = c.completions.create({ prompt: 'x', max_tokens: 100, temperature: 0, ignore_eos: true });
  const streamed = collect(await c.completions.create({ prompt: 'x', max_tokens: 100, temperature: 0, ignore_eos: true, stream: true }))
    .catch((e) => e);
  await until('both requests to run', async () => (await metrics(s.base)).ds_num_requests_running === 2);
  s.proc.kill('SIGTERM');
  await sleep(100);
  // Draining: new requests are refused with 503 until the in-flight ones end.
  await assert.rejects(c.completions.create({ prompt: 'x', max_tokens: 1 }), (e) => e.status === 503);
  assert.equal((await fetch(`${s.base}/health`)).status, 503);
  const r = await inflight;
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 100);
  const chunks = await streamed;
  assert.ok(Array.isArray(chunks), String(chunks));
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  const { code, signal } = await s.exited;
  assert.equal(signal, null);
  assert.equal(code, 0);
  await assert.rejects(fetch(`${s.base}/health`));
}]);

tests.push(['SIGTERM with a stuck request: aborted at the shutdown timeout', async () => {
  const s = await startServer(bin, ['--fake-token-delay-ms', '50', '--shutdown-timeout', '1']);
  const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const long = c.completions.create({ prompt: 'x', max_tokens: 200, temperature: 0, ignore_eos: true }).catch((e) => e);
  await until('the request to run', async () => (await metrics(s.base)).ds_num_requests_running === 1);
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  const { code } = await s.exited;
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 5000);
  const r = await long;
  assert.ok(!(r instanceof Error), String(r));
  assert.equal(r.choices[0].finish_reason, 'abort');
  assert.ok(r.usage.completion_tokens < 200);
}]);

await run(tests);
