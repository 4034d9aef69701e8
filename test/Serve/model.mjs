// ds-serve on a real compiled model (a random tiny checkpoint) through the
// openai SDK: greedy and seeded completions equal ds-run's tokens, alone and
// concurrently, streamed or not; usage, logprobs, stop strings, limits.
// Usage: node model.mjs BUILD_BIN_DIR ARTIFACT CHECKPOINT_DIR
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadOpenAI, startServer, run, metrics, until, postRaw } from './lib.mjs';

const [binDir, artifact, ckpt] = process.argv.slice(2);
const OpenAI = loadOpenAI();
const EOS = 1; // tiny_v3's eos_token_id

function dsRun(prompt, n, extra = []) {
  const out = execFileSync(path.join(binDir, 'ds-run'),
    [artifact, '--weights', ckpt, '--prompt-tokens', prompt.join(','), '--max-new-tokens', String(n), ...extra],
    { encoding: 'utf8', timeout: 60000 });
  return out.trim().split(',').map(Number);
}
const textOf = (ids) => ids.filter((t) => t !== EOS).map((t) => `token_id:${t}`).join('');

const server = await startServer(path.join(binDir, 'ds-serve'), [artifact, '--weights', ckpt, '--max-num-seqs', '3']);
const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
const model = path.basename(ckpt);
const prompts = [[5, 6, 7], [9, 3], [2, 8, 4, 4, 10, 11, 12], [40], [13, 14, 15, 16]];
const expected = prompts.map((p) => dsRun(p, 12));

async function complete(prompt, extra = {}) {
  return client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, return_token_ids: true, ...extra });
}

await run([
  ['models', async () => {
    const m = await client.models.list();
    assert.equal(m.data[0].id, model);
    assert.equal(m.data[0].max_model_len, 64);
  }],

  ['greedy completions equal ds-run, one at a time', async () => {
    for (let i = 0; i < prompts.length; i++) {
      const r = await complete(prompts[i]);
      assert.deepEqual(r.choices[0].token_ids, expected[i], `prompt ${prompts[i]}`);
      assert.equal(r.choices[0].text, textOf(expected[i]));
      assert.equal(r.choices[0].finish_reason, expected[i].at(-1) === EOS ? 'stop' : 'length');
      assert.deepEqual(r.usage, { prompt_tokens: prompts[i].length, completion_tokens: expected[i].length,
                                  total_tokens: prompts[i].length + expected[i].length,
                                  prompt_tokens_details: { cached_tokens: 0 }, // prompts of < 64 tokens
                                  completion_tokens_details: { reasoning_tokens: 0 },
                                  prompt_cache_hit_tokens: 0, prompt_cache_miss_tokens: prompts[i].length });
    }
  }],

  ['greedy completions equal ds-run, concurrently, streamed and not', async () => {
    const jobs = prompts.flatMap((p, i) => [
      complete(p).then((r) => assert.deepEqual(r.choices[0].token_ids, expected[i])),
      (async () => {
        let text = '';
        for await (const c of await complete(p, { stream: true })) text += c.choices[0]?.text ?? '';
        assert.equal(text, textOf(expected[i]));
      })(),
    ]);
    await Promise.all(jobs);
  }],

  ['seeded sampling equals ds-run with the same seed', async () => {
    const want = dsRun([5, 6], 12, ['--temperature', '1.5', '--top-p', '0.9', '--seed', '7']);
    const r = await complete([5, 6], { temperature: 1.5, top_p: 0.9, seed: 7 });
    assert.deepEqual(r.choices[0].token_ids, want);
  }],

  ['n samples: choice j is seed + j\'s answer, each equal to ds-run', async () => {
    const sampled = (seed) => dsRun([5, 6], 12, ['--temperature', '1.5', '--top-p', '0.9', '--seed', String(seed)]);
    const r = await complete([5, 6], { temperature: 1.5, top_p: 0.9, seed: 7, n: 3 });
    assert.equal(r.choices.length, 3);
    for (let j = 0; j < 3; j++) {
      assert.equal(r.choices[j].index, j);
      assert.deepEqual(r.choices[j].token_ids, sampled(7 + j), `choice ${j}`);
    }
    assert.notDeepEqual(r.choices[0].token_ids, r.choices[1].token_ids);
    assert.equal(r.usage.prompt_tokens, 2); // the prompt counts once
    assert.equal(r.usage.completion_tokens, r.choices.reduce((a, c) => a + c.token_ids.length, 0));
  }],

  ['a batch of prompts, streamed with n = 2: every choice equals ds-run', async () => {
    const batch = prompts.slice(0, 3);
    const text = Array(6).fill('');
    let usage = null;
    for await (const c of await complete(batch, { n: 2, stream: true, stream_options: { include_usage: true } })) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) text[ch.index] += ch.text;
    }
    for (let k = 0; k < 6; k++)
      assert.equal(text[k], textOf(expected[Math.floor(k / 2)]), `choice ${k}`);
    assert.equal(usage.prompt_tokens, batch.reduce((a, p) => a + p.length, 0));
    assert.equal(usage.completion_tokens, 2 * expected.slice(0, 3).reduce((a, e) => a + e.length, 0));
    const whole = await complete(batch);
    assert.deepEqual(whole.choices.map((c) => c.token_ids), expected.slice(0, 3));
  }],

  ['echo with logprobs scores a prompt as generation scored its tokens', async () => {
    // Generate, then score prompt + generation in one prefill: the echoed
    // prompt's logprobs are the generated tokens' (rows from the prefill's
    // chunks, not from decode steps).
    const k = 6;
    const gen = await complete(prompts[2], { max_tokens: k, logprobs: 2, ignore_eos: true });
    const ids = gen.choices[0].token_ids;
    const full = [...prompts[2], ...ids];
    const r = await complete(full, { echo: true, max_tokens: 0, logprobs: 2 });
    const lp = r.choices[0].logprobs;
    assert.equal(r.choices[0].text, textOf(full));
    assert.equal(r.usage.completion_tokens, 0);
    assert.equal(lp.tokens.length, full.length);
    assert.equal(lp.token_logprobs[0], null);
    assert.equal(lp.top_logprobs[0], null);
    const P = prompts[2].length;
    for (let i = 0; i < k; i++)
      assert.ok(Math.abs(lp.token_logprobs[P + i] - gen.choices[0].logprobs.token_logprobs[i]) < 1e-5,
                `token ${i}: ${lp.token_logprobs[P + i]} vs ${gen.choices[0].logprobs.token_logprobs[i]}`);
    // Greedy tokens are their row's best, as harnesses check.
    for (let i = P; i < full.length; i++) {
      const best = Math.max(...Object.values(lp.top_logprobs[i]));
      assert.equal(lp.token_logprobs[i], best, `position ${i}`);
    }
  }],

  ['a harness-style batch: token prompts, echo, max_tokens 1, logprobs 1', async () => {
    const batch = [prompts[0], prompts[2], prompts[4]];
    const r = await complete(batch, { echo: true, max_tokens: 1, logprobs: 1 });
    assert.equal(r.choices.length, 3);
    for (let j = 0; j < 3; j++) {
      const lp = r.choices[j].logprobs;
      assert.equal(lp.tokens.length, batch[j].length + 1);
      assert.equal(lp.token_logprobs[0], null);
      assert.ok(lp.token_logprobs.slice(1).every((v) => v <= 0 && v > -50));
      assert.equal(r.choices[j].token_ids[0], expected[[0, 2, 4][j]][0]);
    }
    assert.equal(r.usage.prompt_tokens, batch.reduce((a, p) => a + p.length, 0));
    await assert.rejects(complete(prompts[0], { max_tokens: 0 }), (e) => e.status === 400 && e.param === 'max_tokens');
  }],

  ['top_k 1 is greedy whatever the temperature (vLLM extension)', async () => {
    const greedy = dsRun([5, 6], 12);
    // ds-run's --top-k samples as the server's top_k does.
    const hot = ['--temperature', '1.5', '--seed', '7'];
    assert.deepEqual(dsRun([5, 6], 12, [...hot, '--top-k', '1']), greedy);
    const k3 = await complete([5, 6], { temperature: 1.5, seed: 7, top_k: 3 });
    assert.deepEqual(k3.choices[0].token_ids, dsRun([5, 6], 12, [...hot, '--top-k', '3']));
    assert.notDeepEqual(dsRun([5, 6], 12, [...hot, '--top-k', '3']), dsRun([5, 6], 12, hot));
    const free = await complete([5, 6], { temperature: 1.5, seed: 7 });
    assert.notDeepEqual(free.choices[0].token_ids, greedy, 'this seed must sample off the greedy path');
    const k1 = await complete([5, 6], { temperature: 1.5, seed: 7, top_k: 1 });
    assert.deepEqual(k1.choices[0].token_ids, greedy);
    const off = await complete([5, 6], { temperature: 1.5, seed: 7, top_k: -1 });
    assert.deepEqual(off.choices[0].token_ids, free.choices[0].token_ids);
  }],

  ['stop_token_ids end the completion there, without the token\'s text', async () => {
    const ids = expected[2];
    const stop = ids[3];
    const first = ids.indexOf(stop);
    const r = await complete(prompts[2], { stop_token_ids: [stop] });
    assert.deepEqual(r.choices[0].token_ids, ids.slice(0, first + 1));
    assert.equal(r.choices[0].text, textOf(ids.slice(0, first)));
    assert.equal(r.choices[0].finish_reason, 'stop');
    await assert.rejects(complete(prompts[2], { stop_token_ids: [64] }),
                         (e) => e.status === 400 && e.param === 'stop_token_ids' && /outside the vocabulary/.test(e.message));
  }],

  ['logit_bias, penalties and min_tokens reach the engine', async () => {
    const ids = expected[0];
    // +100 on one token: greedy picks it every time; -100 on the greedy
    // first token: another comes first.
    const forced = await complete(prompts[0], { logit_bias: { 17: 100 }, max_tokens: 5 });
    assert.deepEqual(forced.choices[0].token_ids, [17, 17, 17, 17, 17]);
    const banned = await complete(prompts[0], { logit_bias: { [ids[0]]: -100 }, max_tokens: 5 });
    assert.notEqual(banned.choices[0].token_ids[0], ids[0]);
    // The runner-up lifted just past the best (its logprob lead + 0.5)
    // comes first and, here, again later; the output penalties keep it from
    // coming again.
    const lp = await complete(prompts[0], { max_tokens: 1, logprobs: 2 });
    const top = Object.entries(lp.choices[0].logprobs.top_logprobs[0]).sort((a, b) => b[1] - a[1]);
    const lead = top[0][1] - top[1][1];
    const second = Number(top[1][0].replace('token_id:', ''));
    const lift = { logit_bias: { [second]: lead + 0.5 }, max_tokens: 4 };
    const lifted = (await complete(prompts[0], lift)).choices[0].token_ids;
    const penalized = (await complete(prompts[0], { ...lift, presence_penalty: 2, frequency_penalty: 2 })).choices[0].token_ids;
    assert.equal(lifted[0], second);
    assert.equal(penalized[0], second);
    assert.ok(lifted.slice(1).includes(second), `${lifted}: the lift must bring it back for this check`);
    assert.ok(!penalized.slice(1).includes(second), `${penalized}`);
    // min_tokens holds eos (tiny_v3's 1) off: biased to the top, it still
    // cannot come first.
    const held = await complete(prompts[0], { logit_bias: { [EOS]: 100 }, min_tokens: 2, max_tokens: 4 });
    assert.notEqual(held.choices[0].token_ids[0], EOS);
    assert.equal(held.choices[0].token_ids[2], EOS);
    assert.equal(held.choices[0].finish_reason, 'stop');
    await assert.rejects(complete(prompts[0], { use_beam_search: true }),
                         (e) => e.status === 400 && e.param === 'use_beam_search' && /not supported/.test(e.message));
    // Fill in the middle writes its own prompt: token ids cannot take it.
    await assert.rejects(complete(prompts[0], { suffix: 'x' }),
                         (e) => e.status === 400 && e.param === 'suffix' && /as text/.test(e.message));
    await assert.rejects(complete(prompts[0], { logit_bias: { 64: 1 } }),
                         (e) => e.status === 400 && e.param === 'logit_bias' && /outside the vocabulary/.test(e.message));
  }],

  ['logprobs are log-softmax values, greedy picks the top one', async () => {
    const r = await complete(prompts[0], { logprobs: 3, max_tokens: 4 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, r.usage.completion_tokens);
    for (let i = 0; i < lp.tokens.length; i++) {
      const top = Object.entries(lp.top_logprobs[i]).sort((a, b) => b[1] - a[1]); // a dict: no order
      assert.equal(top.length, 3);
      assert.equal(top[0][0], lp.tokens[i]);
      assert.ok(Math.abs(top[0][1] - lp.token_logprobs[i]) < 1e-6);
      assert.ok(top[0][1] <= 0 && top[0][1] >= top[1][1] && top[1][1] >= top[2][1]);
    }
  }],

  ['stop string on the decoded text', async () => {
    const ids = expected[2];
    const r = await complete(prompts[2], { stop: `token_id:${ids[2]}token_id:${ids[3]}` });
    const first = ids.findIndex((_, k) => k + 1 < ids.length && ids[k] === ids[2] && ids[k + 1] === ids[3]);
    assert.equal(r.choices[0].text, textOf(ids.slice(0, first)));
    assert.equal(r.choices[0].finish_reason, 'stop');
  }],

  ['limits: context, chat without a tokenizer, token ids', async () => {
    const long = Array.from({ length: 60 }, (_, i) => 2 + (i % 50));
    await assert.rejects(complete(long, { max_tokens: 10 }), (e) => e.status === 400 && /maximum context length is 64/.test(e.message));
    await assert.rejects(complete([64]), (e) => e.status === 400 && e.param === 'prompt');
    await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
                         (e) => e.status === 400 && /no tokenizer/.test(e.message));
    for (const [route, body] of [['/tokenize', { prompt: 'hi' }], ['/detokenize', { tokens: [5] }]]) {
      const r = await postRaw(server.base, route, JSON.stringify(body));
      assert.equal(r.status, 400, route);
      assert.match(r.json.error.message, /no tokenizer/);
    }
    const r = await complete(long, { max_tokens: 4 });
    assert.equal(r.usage.prompt_tokens, 60);
  }],

  ['afterwards nothing runs and no page is held', async () => {
    const m = await until('an idle engine', async () => {
      const m = await metrics(server.base);
      return m.ds_num_requests_running === 0 && m.ds_num_requests_waiting === 0 ? m : null;
    });
    assert.equal(m.ds_cache_pages_used, 0);
    assert.ok(m.ds_generation_tokens_total > 0);
    // The checkpoint is read in place: its touched pages are resident.
    assert.ok(m.ds_weights_resident_bytes > 0);
    assert.ok(m.ds_weights_huge_page_bytes <= m.ds_weights_resident_bytes);
  }],

  ['SIGTERM: in-flight requests finish, exit 0', async () => {
    const inflight = complete(prompts[0], { max_tokens: 30, ignore_eos: true });
    await new Promise((r) => setTimeout(r, 20));
    server.proc.kill('SIGTERM');
    const r = await inflight;
    assert.equal(r.usage.completion_tokens, 30);
    const { code, signal } = await server.exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
  }],
]);
