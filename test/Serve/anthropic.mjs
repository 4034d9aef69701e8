// ds-serve's Anthropic Messages API (/v1/messages, count_tokens) through
// Anthropic's official SDK, against ds-serve-fake (byte tokens replaying a
// script). Usage: node anthropic.mjs BUILD_BIN_DIR
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadAnthropic, startServer, run, postRaw } from './lib.mjs';

const bin = path.join(process.argv[2], 'ds-serve-fake');
const Anthropic = loadAnthropic();
// FakeBackend::script(): what a greedy request generates, then end of text.
const SCRIPT = 'Hello! Grüße vom Server 🦊. The quick brown fox jumps over the lazy dog.';
// Room for tool definitions in byte tokens.
const BIG = ['--max-model-len', '8192', '--fake-pages', '2048', '--fake-token-delay-ms', '0'];
const CB = '<｜tool▁calls▁begin｜>', CE = '<｜tool▁calls▁end｜>', B = '<｜tool▁call▁begin｜>',
  E = '<｜tool▁call▁end｜>', S = '<｜tool▁sep｜>';
const v3Call = (name, args) => `${B}function${S}${name}\n\`\`\`json\n${args}\n\`\`\`${E}`;
const WEATHER = { name: 'get_weather', description: 'The weather in a city.',
                  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const messages = [{ role: 'user', content: 'hi' }];

const main = await startServer(bin, ['--max-model-len', '1024', '--fake-token-delay-ms', '1']);
const client = new Anthropic({ baseURL: main.base, apiKey: 'unused', maxRetries: 0 });

async function expectError(promise, status, type) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${e.message}`);
    // Anthropic's error body: {"type": "error", "error": {"type", "message"}}.
    assert.equal(e.error?.type, 'error', JSON.stringify(e.error));
    assert.equal(e.error?.error?.type, type);
    assert.equal(typeof e.error?.error?.message, 'string');
    return e;
  }
  assert.fail(`expected a ${status} error`);
}

// Starts a fake server replaying `text` with extra options; runs fn(client).
async function withServer(text, extra, fn) {
  const s = await startServer(bin, ['--fake-text', text, ...BIG, ...extra]);
  try {
    await fn(new Anthropic({ baseURL: s.base, apiKey: 'x', maxRetries: 0 }));
  } finally { s.proc.kill('SIGKILL'); }
}

await run([
  ['a message whole: text, stop reasons, usage', async () => {
    const r = await client.messages.create({ model: 'fake', max_tokens: 5, messages, temperature: 0 });
    assert.equal(r.type, 'message');
    assert.equal(r.role, 'assistant');
    assert.equal(r.model, 'fake');
    assert.match(r.id, /^msg_/);
    assert.deepEqual(r.content, [{ type: 'text', text: 'Hello' }]);
    assert.equal(r.stop_reason, 'max_tokens');
    assert.equal(r.stop_sequence, null);
    assert.equal(r.usage.output_tokens, 5);
    assert.ok(r.usage.input_tokens > 0);
    const all = await client.messages.create({ model: 'fake', max_tokens: 200, messages, temperature: 0,
                                              system: 'be brief' });
    assert.equal(all.content[0].text, SCRIPT);
    assert.equal(all.stop_reason, 'end_turn');
    assert.ok(all.usage.input_tokens > r.usage.input_tokens); // the system prompt
    // A stop sequence ends the text before it, and is named.
    const stopped = await client.messages.create({ model: 'fake', max_tokens: 200, messages, temperature: 0,
                                                  stop_sequences: ['nope', 'fox'] });
    assert.equal(stopped.content[0].text, SCRIPT.slice(0, SCRIPT.indexOf('fox')));
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, 'fox');
  }],

  ['a message streamed: the SDK\'s MessageStream accumulates our events', async () => {
    const stream = client.messages.stream({ model: 'fake', max_tokens: 200, messages, temperature: 0 });
    const types = [];
    let text = '';
    stream.on('streamEvent', (e) => types.push(e.type));
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, SCRIPT);
    assert.deepEqual(final.content.map((b) => [b.type, b.text]), [['text', SCRIPT]]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, Buffer.byteLength(SCRIPT) + 1);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(types.at(-2), 'message_delta');
    for (const t of ['content_block_start', 'content_block_delta', 'content_block_stop'])
      assert.ok(types.includes(t), t);
    // The raw stream, as curl sees it: named events, JSON data.
    const raw = await postRaw(main.base, '/v1/messages', JSON.stringify({ model: 'fake', max_tokens: 3, messages,
                                                                         stream: true, temperature: 0 }));
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type'), /text\/event-stream/);
    assert.match(raw.text, /^event: message_start\ndata: \{/);
    assert.match(raw.text, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/);
  }],

  ['tool use: blocks whole and streamed, results sent back', async () => {
    const text = 'Let me look.' + CB + v3Call('get_weather', '{"city": "Paris"}') + '\n' +
                 v3Call('get_weather', '{"city": "Zürich"}') + CE;
    await withServer(text, ['--tool-call-parser', 'deepseek_v3', '--enable-auto-tool-choice'], async (c) => {
      const ask = [{ role: 'user', content: 'Weather in Paris and Zürich?' }];
      for (const streamed of [false, true]) {
        const body = { model: 'fake', max_tokens: 500, messages: ask, tools: [WEATHER], temperature: 0 };
        const m = streamed ? await c.messages.stream(body).finalMessage() : await c.messages.create(body);
        assert.equal(m.stop_reason, 'tool_use');
        assert.equal(m.content[0].type, 'text');
        assert.equal(m.content[0].text, 'Let me look.');
        const uses = m.content.filter((b) => b.type === 'tool_use');
        assert.deepEqual(uses.map((u) => [u.name, u.input]),
                         [['get_weather', { city: 'Paris' }], ['get_weather', { city: 'Zürich' }]]);
        for (const u of uses) assert.match(u.id, /^toolu_/);
        assert.notEqual(uses[0].id, uses[1].id);
        // The results go back as tool_result blocks; the answer goes on.
        const next = await c.messages.create({ model: 'fake', max_tokens: 3, tools: [WEATHER], temperature: 0,
          messages: [...ask, { role: 'assistant', content: m.content },
                     { role: 'user', content: uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id,
                                                                  content: 'sunny' })) }] });
        assert.equal(next.stop_reason, 'max_tokens');
      }
      // tool_choice "any" (a call is required) and "none" are taken.
      const none = await c.messages.create({ model: 'fake', max_tokens: 3, messages: ask, tools: [WEATHER],
                                             tool_choice: { type: 'none' }, temperature: 0 });
      assert.deepEqual(none.content.map((b) => b.type), ['text']);
      // Server tools are refused with the field named.
      const e = await expectError(c.messages.create({ model: 'fake', max_tokens: 3, messages: ask,
        tools: [{ type: 'web_search_20250305', name: 'web_search' }] }), 400, 'invalid_request_error');
      assert.match(e.error.error.message, /tools\[0\].*custom tools/);
    });
  }],

  ['thinking blocks from --reasoning-parser, whole and streamed', async () => {
    await withServer('<think>Paris is in France.</think>It is sunny.', ['--reasoning-parser', 'deepseek_r1'],
      async (c) => {
        for (const streamed of [false, true]) {
          const body = { model: 'fake', max_tokens: 200, messages, temperature: 0,
                         thinking: { type: 'enabled', budget_tokens: 1024 } };
          const m = streamed ? await c.messages.stream(body).finalMessage() : await c.messages.create(body);
          assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
          assert.equal(m.content[0].thinking, 'Paris is in France.');
          assert.equal(m.content[1].text, 'It is sunny.');
          assert.equal(m.stop_reason, 'end_turn');
        }
      });
  }],

  ['count_tokens equals the prompt a message is given; cache reads counted apart', async () => {
    const body = { model: 'fake', system: 'be brief', messages: [{ role: 'user', content: 'hello there' }] };
    const counted = await client.messages.countTokens(body);
    const m = await client.messages.create({ ...body, max_tokens: 1, temperature: 0 });
    // Anthropic counts prefix-cache reads apart: the two add up to the prompt.
    assert.equal(counted.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens);
    const again = await client.messages.create({ ...body, max_tokens: 1, temperature: 0 });
    assert.ok(again.usage.cache_read_input_tokens > 0);
    assert.equal(again.usage.cache_creation_input_tokens, 0);
    assert.equal(counted.input_tokens, again.usage.input_tokens + again.usage.cache_read_input_tokens);
    const longer = await client.messages.countTokens({ ...body, messages: [{ role: 'user', content: 'hello there!!' }] });
    assert.equal(longer.input_tokens, counted.input_tokens + 2); // byte tokens
  }],

  ['errors in Anthropic\'s shape; x-api-key', async () => {
    let e = await expectError(client.messages.create({ model: 'other', max_tokens: 3, messages }), 404,
                              'not_found_error');
    e = await expectError(client.messages.create({ model: 'fake', messages }), 400, 'invalid_request_error');
    assert.match(e.error.error.message, /max_tokens/);
    await expectError(client.messages.create({ model: 'fake', max_tokens: 3,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png',
                                                                           data: 'AA==' } }] }] }),
                      400, 'invalid_request_error');
    await expectError(client.messages.create({ model: 'fake', max_tokens: 5000, messages }), 400,
                      'invalid_request_error');
    const k = await startServer(bin, ['--api-key', 'sekret']);
    try {
      const bad = new Anthropic({ baseURL: k.base, apiKey: 'wrong', maxRetries: 0 });
      await expectError(bad.messages.create({ model: 'fake', max_tokens: 2, messages }), 401, 'authentication_error');
      // The SDK sends the key as x-api-key; a bearer token works too.
      const good = new Anthropic({ baseURL: k.base, apiKey: 'sekret', maxRetries: 0 });
      const r = await good.messages.create({ model: 'fake', max_tokens: 2, messages, temperature: 0 });
      assert.equal(r.content[0].text, 'He');
      const bearer = new Anthropic({ baseURL: k.base, authToken: 'sekret', apiKey: null, maxRetries: 0 });
      assert.equal((await bearer.messages.countTokens({ model: 'fake', messages })).input_tokens > 0, true);
    } finally { k.proc.kill('SIGKILL'); }
  }],

  ['--served-model-name twice: an alias an agent may send', async () => {
    const s = await startServer(bin, ['--served-model-name', 'deepseek-chat', '--served-model-name',
                                      'claude-sonnet-4-5', '--fake-token-delay-ms', '0']);
    try {
      const c = new Anthropic({ baseURL: s.base, apiKey: 'x', maxRetries: 0 });
      const r = await c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 2, messages, temperature: 0 });
      assert.equal(r.model, 'deepseek-chat');
      const models = await (await fetch(`${s.base}/v1/models`)).json();
      assert.deepEqual(models.data.map((m) => m.id), ['deepseek-chat', 'claude-sonnet-4-5']);
      await expectError(c.messages.create({ model: 'other', max_tokens: 2, messages }), 404, 'not_found_error');
    } finally { s.proc.kill('SIGKILL'); }
  }],

  ['a final assistant message is continued (prefill)', async () => {
    const r = await client.messages.create({ model: 'fake', max_tokens: 4, temperature: 0,
      messages: [{ role: 'user', content: 'Say hello' }, { role: 'assistant', content: 'Well,' }] });
    assert.equal(r.content[0].text, 'Hell');
    // The prompt ends with the prefill: one token a byte, no turn after it.
    const plain = await client.messages.countTokens({ model: 'fake', messages: [{ role: 'user', content: 'Say hello' }] });
    const filled = await client.messages.countTokens({ model: 'fake',
      messages: [{ role: 'user', content: 'Say hello' }, { role: 'assistant', content: 'Well,' }] });
    assert.ok(filled.input_tokens > plain.input_tokens);
  }],
]);
