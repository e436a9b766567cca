/**
 * Host memory under hostile uploads, against a real `studio serve` (its own process; the engine runs in
 * another, not counted): decompression bombs (real PNGs of 16000×16000: a 1-bit one of ~31 KB and an
 * 8-bit one of ~249 KB) sent as init image and as mask, and four simultaneous 79 MiB request bodies,
 * both refused ones (an init image past the contract's bound) and accepted ones (a picture and a mask
 * of ~39.5 MiB each behind real 64×64 PNG headers: validated, queued, then failed by the engine).
 *
 * For each case, RUNS times: the server's resident memory before (baseline), its peak during the case
 * (VmHWM, reset before each run through /proc/<pid>/clear_refs), the growth (peak − baseline), and what
 * is still resident 2 s after the answers (minus the baseline; and how much of the whole is file-backed,
 * such as the databases' memory-mapped pages). Prints one JSON object with the median,
 * min and max of each, the answers, and the machine's load.
 *
 * Run: npm run bench:server-memory (Linux: reads /proc/<pid>/status). SERVER_MEMORY_BENCH_RUNS=5 for more
 * runs; SERVER_MEMORY_BENCH_CASES=bomb8bitMask,fourUploads79MiBRefused for some cases only.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createDeflate } from 'node:zlib';
import sharp from 'sharp';

const RUNS = Number(process.env['SERVER_MEMORY_BENCH_RUNS'] ?? 3);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1-inpaint');
const BOMB_SIDE = 16000;
const UPLOAD_BYTES = 79 * 1024 * 1024;
const UPLOADS = 4;
const SETTLE_MS = 2000;

/** The CRC-32 of PNG chunks (ISO 3309). */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, body: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const out = Buffer.alloc(8 + body.length + 4);
  out.writeUInt32BE(body.length, 0);
  typed.copy(out, 4);
  out.writeUInt32BE(crc32(typed), 8 + body.length);
  return out;
}

/** A real PNG bomb: side² greyscale of `bitDepth` bits, every row zeros, deflated at level 9. */
async function pngBomb(side: number, bitDepth: 1 | 8): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([bitDepth, 0, 0, 0, 0], 8);
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((r) => deflate.on('end', r));
  const row = Buffer.alloc(Math.ceil((side * bitDepth) / 8) + 1);
  for (let y = 0; y < side; y++) if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  deflate.end();
  await done;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

function memory(pid: number): { rssMb: number; peakMb: number; fileMb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024, fileMb: kb('RssFile') / 1024 };
}

function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: number[]) => ({ median: Math.round(median(xs)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Answer = { status: number; code: string };

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'studio-memory-bench-'));
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'studio.mjs'), 'serve', '--port', '0', '--data-dir', dataDir, '--providers', 'cpu', '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
    const { port, token } = JSON.parse(line) as { port: number; token: string };
    const pid = child.pid!;
    // A fresh connection per request (agent: false): a reused keep-alive socket can be closed by the
    // server just as a 79 MiB body starts on it.
    const invokeJson = <T>(channel: string, body: string | Buffer) =>
      new Promise<{ status: number; body: { ok: boolean; result?: T; error?: { code: string } } }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: `/api/invoke/${channel}`,
            method: 'POST',
            agent: false,
            headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Content-Length': Buffer.byteLength(body) },
          },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString()) as never }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const invoke = async (channel: string, body: string | Buffer): Promise<Answer> => {
      const { status, body: answer } = await invokeJson(channel, body);
      return { status, code: answer.ok ? 'ok' : answer.error!.code };
    };
    const imported = await invoke('models.import', JSON.stringify({ path: MODEL }));
    if (imported.code !== 'ok') throw new Error(`models.import: ${imported.code}`);
    const queueEmpty = async () => {
      for (;;) {
        const snapshot = (await invokeJson<{ running: unknown; queued: unknown[] }>('queue.list', '{}')).body.result!;
        if (snapshot.running === null && snapshot.queued.length === 0) return;
        await sleep(200);
      }
    };

    const bomb1 = await pngBomb(BOMB_SIDE, 1);
    const bomb8 = await pngBomb(BOMB_SIDE, 8);
    const small = (await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer()).toString('base64');
    const bombCase = (bomb: Buffer, as: 'initImage' | 'mask') => async () => {
      const b64 = bomb.toString('base64');
      const body = as === 'initImage' ? { mode: 'img2img', prompt: 'x', initImage: b64, width: 64, height: 64 } : { mode: 'inpaint', prompt: 'x', initImage: small, mask: b64, width: 64, height: 64 };
      return [await invoke('generate', JSON.stringify(body))];
    };
    /** A 79 MiB generate whose init image is past the contract's bound: refused after parsing. */
    const refusedUpload = (): Buffer => {
      const body = Buffer.alloc(UPLOAD_BYTES, 'A');
      Buffer.from('{"mode":"img2img","prompt":"x","initImage":"').copy(body);
      body.write('"}', UPLOAD_BYTES - 2);
      return body;
    };
    /**
     * A 79 MiB inpaint whose picture and mask (~39.5 MiB of base64 each) start with a real 64×64 PNG's
     * header: within every bound, so it is queued, and the engine refuses the pixels.
     */
    const acceptedUpload = (): Buffer => {
      const head = Buffer.from(`{"mode":"inpaint","prompt":"x","width":64,"height":64,"strength":1,"steps":1,"initImage":"`);
      const middle = Buffer.from('","mask":"');
      const tail = Buffer.from('"}');
      const each = Math.floor((UPLOAD_BYTES - head.length - middle.length - tail.length) / 2 / 4) * 4;
      const image = (): Buffer => {
        const b = Buffer.alloc(each, 'A');
        Buffer.from(small.slice(0, 44)).copy(b); // the signature and IHDR: 64×64
        return b;
      };
      return Buffer.concat([head, image(), middle, image(), tail]);
    };
    const cases: Record<string, () => Promise<Answer[]>> = {
      bomb1bitInitImage: bombCase(bomb1, 'initImage'),
      bomb1bitMask: bombCase(bomb1, 'mask'),
      bomb8bitInitImage: bombCase(bomb8, 'initImage'),
      bomb8bitMask: bombCase(bomb8, 'mask'),
      fourUploads79MiBRefused: async () => {
        const body = refusedUpload();
        return Promise.all(Array.from({ length: UPLOADS }, () => invoke('generate', body)));
      },
      fourUploads79MiBAccepted: async () => {
        const body = acceptedUpload();
        const answers = await Promise.all(Array.from({ length: UPLOADS }, () => invoke('generate', body)));
        await queueEmpty();
        return answers;
      },
    };
    const out: Record<string, unknown> = {};
    const only = process.env['SERVER_MEMORY_BENCH_CASES']?.split(',');
    for (const [name, run] of Object.entries(cases)) {
      if (only && !only.includes(name)) continue;
      const baseline: number[] = [];
      const peak: number[] = [];
      const growth: number[] = [];
      const after: number[] = [];
      const afterFile: number[] = [];
      let answers: string[] = [];
      for (let i = 0; i < RUNS; i++) {
        await sleep(SETTLE_MS);
        const before = memory(pid).rssMb;
        resetPeak(pid);
        answers = (await run()).map((a) => `${a.status} ${a.code}`);
        const top = Math.max(memory(pid).peakMb, before);
        await sleep(SETTLE_MS);
        baseline.push(before);
        peak.push(top);
        growth.push(top - before);
        const end = memory(pid);
        after.push(end.rssMb - before);
        afterFile.push(end.fileMb);
      }
      console.error(name, JSON.stringify({ answers, growth, after }));
      out[name] = { answers, baselineMb: spread(baseline), peakMb: spread(peak), growthMb: spread(growth), residentAfterMb: spread(after), fileBackedAfterMb: spread(afterFile) };
    }
    console.log(
      JSON.stringify(
        {
          bench: 'server-memory',
          runs: RUNS,
          bombs: { side: BOMB_SIDE, png1bitBytes: bomb1.length, png8bitBytes: bomb8.length },
          uploadBytes: UPLOAD_BYTES,
          uploads: UPLOADS,
          cases: out,
          machine: { cpus: cpus().length, loadavg: loadavg().map((l) => Number(l.toFixed(2))) },
        },
        null,
        2,
      ),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
