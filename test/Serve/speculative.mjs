// ds-serve --speculative on a compiled tiny model with an MTP module:
// greedy completions (alone and concurrent, streamed or not) equal ds-run's
// plain tokens, and /metrics counts the drafts proposed and accepted.
// Usage: node speculative.mjs BUILD_BIN_DIR ARTIFACT CHECKPOINT_DIR
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer, run, metrics, postRaw } from './lib.mjs';

const [binDir, artifact, ckpt] = process.argv.slice(2);

function dsRun(prompt, n) {
  const out = execFileSync(path.join(binDir, 'ds-run'),
    [artifact, '--weights', ckpt, '--prompt-tokens', prompt.join(','), '--max-new-tokens', String(n)],
    { encoding: 'utf8', timeout: 60000 });
  return out.trim().split(',').map(Number);
}

const server = await startServer(path.join(binDir, 'ds-serve'),
  [artifact, '--weights', ckpt, '--max-num-seqs', '3', '--speculative', 'mtp:2']);
const model = path.basename(ckpt);
const prompts = [[5, 6, 7], [9, 3], [2, 8, 4, 4, 10, 11, 12], [40], [13, 14, 15, 16]];
const expected = prompts.map((p) => dsRun(p, 40));

async function complete(prompt, extra = {}) {
  const r = await postRaw(server.base, '/v1/completions', JSON.stringify(
    { model, prompt, max_tokens: 40, temperature: 0, return_token_ids: true, ...extra }));
  assert.equal(r.status, 200, r.text);
  return r.json;
}

await run([
  ['greedy completions equal plain decoding, one at a time', async () => {
    for (let i = 0; i < prompts.length; i++)
      assert.deepEqual((await complete(prompts[i])).choices[0].token_ids, expected[i], `prompt ${prompts[i]}`);
  }],
  ['greedy completions equal plain decoding, concurrently', async () => {
    const got = await Promise.all(prompts.map((p) => complete(p)));
    got.forEach((r, i) => assert.deepEqual(r.choices[0].token_ids, expected[i]));
  }],
  ['metrics count drafts', async () => {
    const m = await metrics(server.base);
    assert.ok(m.ds_spec_decode_num_drafts_total > 0, JSON.stringify(m));
    assert.ok(m.ds_spec_decode_num_draft_tokens_total >= m.ds_spec_decode_num_drafts_total);
    assert.ok(m.ds_spec_decode_num_draft_tokens_total <= 2 * m.ds_spec_decode_num_drafts_total);
    assert.ok(m.ds_spec_decode_num_accepted_tokens_total <= m.ds_spec_decode_num_draft_tokens_total);
  }],
]);
