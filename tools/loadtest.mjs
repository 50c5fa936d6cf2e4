#!/usr/bin/env node
// A bounded load test of `cnn serve` on loopback: C clients send a fixed number of requests
// (predict, the step-throughs, the model's insides, shapes) as fast as they are answered, for at
// most a fixed time, while a few slow clients send a header line a second and never finish.
// Reports each endpoint's answers and latency (p50, p90, p99), the errors, the slow clients' fate,
// and the server's resident memory (VmRSS, and VmHWM: its peak) before and after; then checks the
// server still answers. Node's own http and net only.
//
//   node tools/loadtest.mjs --binary build-srv/cnn --weights /tmp/srv/model.cnnt \
//       [--concurrency 32] [--requests 4000] [--seconds 60] [--slow 8] [--json out.json]
//   node tools/loadtest.mjs --url http://127.0.0.1:8080 --pid 1234 ...   (a running server)
//
// Exit status 0 when every request was answered with 200 (or 503, the server refusing work it has
// no room for, counted apart) and the server answers afterwards; 1 otherwise.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { createInterface } from "node:readline";

const args = { concurrency: 32, requests: 4000, seconds: 60, slow: 8 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "");
  const value = process.argv[i + 1];
  if (value === undefined) throw new Error(`--${key} needs a value`);
  args[key] = ["concurrency", "requests", "seconds", "slow", "pid"].includes(key) ? Number(value) : value;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The server: started here (its pid known), or a running one given by --url and --pid.
async function startServer() {
  if (args.url) return { url: new URL(args.url), pid: args.pid, child: null };
  if (!args.binary) throw new Error("--binary PATH (to start a server) or --url URL --pid PID");
  const argv = ["serve", "--port", "0"];
  if (args.weights) argv.push("--weights", args.weights);
  if (args["data-dir"]) argv.push("--data-dir", args["data-dir"]);
  const child = spawn(args.binary, argv, { stdio: ["ignore", "pipe", "inherit"] });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`cnn serve exited with ${code}`)));
  });
  const m = /http:\/\/([0-9.]+):(\d+)\//.exec(first);
  if (!m) throw new Error(`no address in: ${first}`);
  return { url: new URL(`http://${m[1]}:${m[2]}/`), pid: child.pid, child };
}

function memory(pid) {
  if (!pid) return null;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss_mb: +(field("VmRSS") / 1024).toFixed(1), peak_mb: +(field("VmHWM") / 1024).toFixed(1),
           threads: field("Threads") };
}

// The requests, in turn. A drawn "1" as a 112x112 drawing, and as the 28x28 input of the model.
const drawing = Array.from({ length: 112 }, (_, y) =>
  Array.from({ length: 112 }, (_, x) => (y > 16 && y < 96 && x > 50 && x < 62 ? 0 : 255)));
const pixels = Array.from({ length: 28 }, (_, y) =>
  Array.from({ length: 28 }, (_, x) => (y > 5 && y < 22 && (x === 13 || x === 14) ? 1 : 0)));
const grid = (n, f) => Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => f(r, c)));
const mix = [
  ["predict", "/api/predict", { pixels: drawing }],
  ["conv2d/steps", "/api/conv2d/steps",
   { image: grid(32, (r, c) => (r * 7 + c) % 10), kernel: grid(3, (r, c) => r - c), padding: 1 }],
  ["maxpool2d/steps", "/api/maxpool2d/steps",
   { image: grid(28, (r, c) => (r * 3 + c) % 9), kernel_size: 2, stride: 2 }],
  ["inside", "/api/inside", { pixels }],
  ["inside/step", "/api/inside/step", { pixels, channel: 5, row: 10, col: 12 }],
  ["inside/conv2-step", "/api/inside/conv2-step", { pixels, channel: 7, row: 3, col: 3 }],
  ["shapes", "/api/shapes", { input: [1, 28, 28], layers: [
    { type: "Conv2d", out_channels: 16, kernel_size: 3 }, { type: "ReLU" },
    { type: "MaxPool2d", kernel_size: 2, stride: 2, padding: 1 }, { type: "Flatten" },
    { type: "Linear", out_features: 10 }] }],
].map(([name, path, body]) => ({ name, path, body: JSON.stringify(body) }));

function request(agent, url, method, path, body, timeoutMs) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const done = (status, error) =>
      resolve({ status, error, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    const req = http.request({ agent, host: url.hostname, port: url.port, method, path, timeout: timeoutMs,
                               headers: body ? { "Content-Type": "application/json",
                                                 "Content-Length": Buffer.byteLength(body) } : {} },
                             (res) => { res.resume(); res.on("end", () => done(res.statusCode, null)); });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => done(0, e.message));
    req.end(body);
  });
}

// A client that sends a request's head a line a second and never finishes it; reconnects when cut.
function slowClient(url, stop, stats) {
  return new Promise((resolve) => {
    const connect = () => {
      if (stop.done) return resolve();
      const sock = net.connect(Number(url.port), url.hostname);
      let timer = null;
      sock.on("connect", () => {
        stats.connections++;
        sock.write("GET / HTTP/1.1\r\nHost: slow\r\n");
        let n = 0;
        timer = setInterval(() => sock.write(`X-Slow-${n++}: 1\r\n`), 1000);
      });
      sock.on("data", () => {});
      sock.on("error", () => {});
      sock.on("close", () => {
        clearInterval(timer);
        if (!stop.done) stats.cut++;
        setTimeout(connect, 100);
      });
      stop.sockets.push(sock);
    };
    connect();
  });
}

const percentile = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;

const server = await startServer();
const url = server.url;
const agent = new http.Agent({ keepAlive: true, maxSockets: args.concurrency });
// Warm up (the first requests fault in the model and the assets), then measure.
for (const m of mix) await request(agent, url, "POST", m.path, m.body, 10000);
await sleep(500);
const before = memory(server.pid);

const stop = { done: false, sockets: [] };
const slowStats = { connections: 0, cut: 0 };
const slow = Array.from({ length: args.slow }, () => slowClient(url, stop, slowStats));
const results = new Map(mix.map((m) => [m.name, []]));
let sent = 0;
const t0 = Date.now();
const deadline = t0 + args.seconds * 1000;
async function client(k) {
  for (;;) {
    const i = sent++;
    if (i >= args.requests || Date.now() > deadline) return;
    const m = mix[(i + k) % mix.length];
    results.get(m.name).push(await request(agent, url, "POST", m.path, m.body, 30000));
  }
}
await Promise.all(Array.from({ length: args.concurrency }, (_, k) => client(k)));
const elapsed = (Date.now() - t0) / 1000;
stop.done = true;
for (const s of stop.sockets) s.destroy();
await Promise.all(slow);
agent.destroy();
await sleep(1000);
const after = memory(server.pid);
// Still answering, at once, after the load.
const check = await request(undefined, url, "GET", "/api/model", null, 2000);

const report = { concurrency: args.concurrency, slow_clients: args.slow, seconds: +elapsed.toFixed(1),
                 requests: 0, ok: 0, busy_503: 0, errors: 0, endpoints: {}, slow: slowStats,
                 memory_before: before, memory_after: after,
                 answers_after: check.status === 200, answer_after_ms: +check.ms.toFixed(1) };
const all = [];
for (const [name, rs] of results) {
  const ms = rs.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
  all.push(...ms);
  const errors = rs.filter((r) => r.status !== 200 && r.status !== 503);
  report.endpoints[name] = { requests: rs.length, ok: ms.length,
                             busy_503: rs.filter((r) => r.status === 503).length,
                             errors: errors.length,
                             first_error: errors[0] ? errors[0].error ?? `status ${errors[0].status}` : undefined,
                             p50_ms: +percentile(ms, 50).toFixed(1), p90_ms: +percentile(ms, 90).toFixed(1),
                             p99_ms: +percentile(ms, 99).toFixed(1) };
  report.requests += rs.length;
  report.ok += ms.length;
  report.busy_503 += report.endpoints[name].busy_503;
  report.errors += errors.length;
}
all.sort((a, b) => a - b);
report.p50_ms = +percentile(all, 50).toFixed(1);
report.p90_ms = +percentile(all, 90).toFixed(1);
report.p99_ms = +percentile(all, 99).toFixed(1);
report.requests_per_s = +(report.requests / elapsed).toFixed(1);

console.log(`${report.requests} requests in ${report.seconds} s (${report.requests_per_s}/s), ` +
            `${args.concurrency} clients and ${args.slow} slow ones: ${report.ok} ok, ` +
            `${report.busy_503} busy (503), ${report.errors} errors`);
console.log("endpoint             requests    ok  503  errors   p50 ms   p90 ms   p99 ms");
for (const [name, e] of Object.entries(report.endpoints)) {
  console.log(`${name.padEnd(20)} ${String(e.requests).padStart(8)} ${String(e.ok).padStart(5)} ` +
              `${String(e.busy_503).padStart(4)} ${String(e.errors).padStart(7)} ` +
              `${e.p50_ms.toFixed(1).padStart(8)} ${e.p90_ms.toFixed(1).padStart(8)} ${e.p99_ms.toFixed(1).padStart(8)}` +
              (e.first_error ? `  (${e.first_error})` : ""));
}
console.log(`all                  latency p50 ${report.p50_ms} ms, p90 ${report.p90_ms} ms, p99 ${report.p99_ms} ms`);
console.log(`slow clients: ${slowStats.connections} connections, ${slowStats.cut} cut off by the server`);
if (before) {
  console.log(`server memory: VmRSS ${before.rss_mb} MB before, ${after.rss_mb} MB after ` +
              `(peak VmHWM ${after.peak_mb} MB), ${after.threads} threads`);
}
console.log(`after the load: GET /api/model ${check.status === 200 ? "answered" : "FAILED"} in ${check.ms.toFixed(1)} ms`);
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2) + "\n");
if (server.child) server.child.kill("SIGTERM");
process.exit(report.errors === 0 && report.answers_after ? 0 : 1);
