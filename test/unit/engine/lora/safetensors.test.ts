/** The safetensors reader: dtypes widened exactly, metadata, and a clear error for every malformed file. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LoraFileError, SafetensorsFile } from '../../../../electron/engine/lora/safetensors.js';
import { safetensorsBytes } from '../../../support/safetensors.js';

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsFile.parse(bytes, '/loras/bad.safetensors'),
    (err: unknown) => {
      assert.ok(err instanceof LoraFileError, `expected a LoraFileError, got ${String(err)}`);
      assert.equal(err.code, 'E_LORA_FILE');
      assert.match(err.message, /^bad\.safetensors: /);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('safetensors reader', () => {
  const values = [0.5, -2, 3.25, 1 / 3];
  const bytes = safetensorsBytes(
    {
      f32: { dtype: 'F32', shape: [2, 2], values },
      f16: { dtype: 'F16', shape: [4], values },
      bf16: { dtype: 'BF16', shape: [4, 1], values },
    },
    { ss_network_dim: '4', ss_tag_frequency: '{"a": {"b": 1}}' },
  );

  test('reads F32, F16 and BF16 as float32, with shapes and metadata', () => {
    const file = SafetensorsFile.parse(bytes);
    assert.deepEqual([...file.float32('f32')], [0.5, -2, 3.25, Math.fround(1 / 3)]);
    // 1/3 as fp16 (0x3555) and as bf16 (0x3eaa, the test writer truncates); the others are exact.
    assert.deepEqual([...file.float32('f16')], [0.5, -2, 3.25, 0.333251953125]);
    assert.deepEqual([...file.float32('bf16')], [0.5, -2, 3.25, 0.33203125]);
    assert.deepEqual(file.tensors.get('bf16')!.shape, [4, 1]);
    assert.equal(file.metadata['ss_network_dim'], '4');
  });

  test('a file cut anywhere is reported as truncated or not safetensors', () => {
    rejects(bytes.subarray(0, 5), /shorter than the 8-byte header length/);
    rejects(bytes.subarray(0, 40), /truncated: the header says \d+ bytes/);
    rejects(bytes.subarray(0, bytes.length - 3), /truncated: tensor "bf16" ends at byte 32 of the data, which has only 29/);
  });

  test('an unsupported or unknown dtype is named', () => {
    const i8 = Buffer.from(safetensorsBytes({ w: { dtype: 'F16', shape: [2], values: [1, 2] } }).toString('latin1').replace('"F16"', '"I8" ').replace('"shape":[2]', '"shape":[4]'), 'latin1');
    rejects(i8, /tensor "w" has dtype I8; LoRA weights must be F32, F16 or BF16/);
    const odd = Buffer.from(safetensorsBytes({ w: { dtype: 'F16', shape: [2], values: [1, 2] } }).toString('latin1').replace('"F16"', '"Q4" '), 'latin1');
    rejects(odd, /unknown dtype "Q4"/);
  });

  test('a size that does not match dtype × shape, bad JSON and a huge header length are errors', () => {
    const short = Buffer.from(safetensorsBytes({ w: { dtype: 'F32', shape: [2], values: [1, 2] } }).toString('latin1').replace('"shape":[2]', '"shape":[3]'), 'latin1');
    rejects(short, /holds 8 bytes but F32 \[3\] needs 12/);
    const notJson = Buffer.from(bytes);
    notJson[8] = 0x7b + 1; // '|' instead of '{'
    rejects(notJson, /the header is not JSON/);
    const huge = Buffer.from(bytes);
    huge.writeBigUInt64LE(1n << 40n, 0);
    rejects(huge, /over the format's 100 MB limit/);
  });
});
